//go:build amd64 && !purego

#include "textflag.h"

// func dotRowsInt8AVX2(out *float32, q *float32, rows *int8, n int, dim int)
//
// For each of n rows: int8 values sign-extended to int32 (VPMOVSXBD, 8 at
// a time), converted to float32 (VCVTDQ2PS) and multiplied into four
// 8-wide accumulators (Y0–Y3) against q, 32 values a step while 32 or more
// remain, then 16; the accumulators are summed and reduced horizontally
// into out[i]. dim is a multiple of 16. Registers: DI out, SI q, DX the
// current row, CX rows left, R8 dim, R9 q cursor, R10 values left.
TEXT ·dotRowsInt8AVX2(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ rows+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ dim+32(FP), R8

row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   SI, R9
	MOVQ   R8, R10
	CMPQ   R10, $32
	JLT    tail

step32:
	VPMOVSXBD   (DX), Y4
	VPMOVSXBD   8(DX), Y5
	VPMOVSXBD   16(DX), Y6
	VPMOVSXBD   24(DX), Y7
	VCVTDQ2PS   Y4, Y4
	VCVTDQ2PS   Y5, Y5
	VCVTDQ2PS   Y6, Y6
	VCVTDQ2PS   Y7, Y7
	VFMADD231PS (R9), Y4, Y0
	VFMADD231PS 32(R9), Y5, Y1
	VFMADD231PS 64(R9), Y6, Y2
	VFMADD231PS 96(R9), Y7, Y3
	ADDQ        $32, DX
	ADDQ        $128, R9
	SUBQ        $32, R10
	CMPQ        R10, $32
	JGE         step32

tail:
	TESTQ       R10, R10
	JZ          reduce
	VPMOVSXBD   (DX), Y4
	VPMOVSXBD   8(DX), Y5
	VCVTDQ2PS   Y4, Y4
	VCVTDQ2PS   Y5, Y5
	VFMADD231PS (R9), Y4, Y0
	VFMADD231PS 32(R9), Y5, Y1
	ADDQ        $16, DX
	ADDQ        $64, R9
	SUBQ        $16, R10
	JMP         tail

reduce:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
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
