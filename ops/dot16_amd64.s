//go:build amd64 && !purego

#include "textflag.h"

// func dotRowsF16AVX2(out *float32, q *float32, rows *uint16, n int, dim int)
//
// For each of n rows: 16 halves a step converted by VCVTPH2PS and
// multiplied into two 8-wide accumulators (Y0, Y1) against q; the two are
// summed and reduced horizontally into out[i]. dim is a multiple of 16.
// Registers: DI out, SI q, DX the current row, CX rows left, R8 dim,
// R9 q cursor, R10 values left in the row.
TEXT ·dotRowsF16AVX2(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ rows+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ dim+32(FP), R8

row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ   SI, R9
	MOVQ   R8, R10

step:
	VCVTPH2PS   (DX), Y2
	VCVTPH2PS   16(DX), Y3
	VFMADD231PS (R9), Y2, Y0
	VFMADD231PS 32(R9), Y3, Y1
	ADDQ        $32, DX
	ADDQ        $64, R9
	SUBQ        $16, R10
	JNZ         step

	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	MOVSS        X0, (DI)
	ADDQ         $4, DI
	DECQ         CX
	JNZ          row

	VZEROUPPER
	RET
