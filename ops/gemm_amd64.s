//go:build amd64 && !purego

#include "textflag.h"

// The 6×16 micro-kernel (see kernelGo in gemm.go). Registers:
//   SI        A rows 0–2: (SI), (SI)(R11*1), (SI)(R11*2)
//   R13       A rows 3–5: SI + 3·rs
//   R11, R12  row stride and k stride of A, in bytes
//   DI        B panel, 64 bytes per k step
//   Y0–Y11    the tile: row i in Y(2i) (columns 0–7) and Y(2i+1) (8–15)
//   Y12, Y13  the B row of this step; Y14, Y15 broadcasts of A

// One k step at byte offset boff into the B panel.
#define STEP(boff) \
	VMOVUPS      boff(DI), Y12; \
	VMOVUPS      boff+32(DI), Y13; \
	VBROADCASTSS (SI), Y14; \
	VBROADCASTSS (SI)(R11*1), Y15; \
	VFMADD231PS  Y12, Y14, Y0; \
	VFMADD231PS  Y13, Y14, Y1; \
	VFMADD231PS  Y12, Y15, Y2; \
	VFMADD231PS  Y13, Y15, Y3; \
	VBROADCASTSS (SI)(R11*2), Y14; \
	VBROADCASTSS (R13), Y15; \
	VFMADD231PS  Y12, Y14, Y4; \
	VFMADD231PS  Y13, Y14, Y5; \
	VFMADD231PS  Y12, Y15, Y6; \
	VFMADD231PS  Y13, Y15, Y7; \
	VBROADCASTSS (R13)(R11*1), Y14; \
	VBROADCASTSS (R13)(R11*2), Y15; \
	VFMADD231PS  Y12, Y14, Y8; \
	VFMADD231PS  Y13, Y14, Y9; \
	VFMADD231PS  Y12, Y15, Y10; \
	VFMADD231PS  Y13, Y15, Y11; \
	ADDQ         R12, SI; \
	ADDQ         R12, R13

// Store (or add into) one row of C from two accumulators, then advance R9.
#define STOREROW(r0, r1) \
	VMOVUPS r0, (R9); \
	VMOVUPS r1, 32(R9); \
	ADDQ    R8, R9

#define ADDROW(r0, r1) \
	VADDPS  (R9), r0, r0; \
	VADDPS  32(R9), r1, r1; \
	VMOVUPS r0, (R9); \
	VMOVUPS r1, 32(R9); \
	ADDQ    R8, R9

// Prefetch one row of the C tile (64 bytes, maybe across two lines).
#define PREFETCHROW \
	PREFETCHT0 (AX); \
	PREFETCHT0 63(AX); \
	ADDQ       R8, AX

// func sgemm6x16AVX2(k int, a *float32, rs int, ks int, b *float32, c *float32, ldc int, acc int)
TEXT ·sgemm6x16AVX2(SB), NOSPLIT, $0-64
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ rs+16(FP), R11
	SHLQ $2, R11
	MOVQ ks+24(FP), R12
	SHLQ $2, R12
	MOVQ b+32(FP), DI
	MOVQ c+40(FP), R9
	MOVQ ldc+48(FP), R8
	SHLQ $2, R8
	LEAQ (SI)(R11*2), R13
	ADDQ R11, R13

	// The C tile is read and written only after the k loop: fetch it now.
	MOVQ R9, AX
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW
	PREFETCHROW

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	// Four steps per iteration, then the remaining k%4 one at a time.
	MOVQ  CX, BX
	SHRQ  $2, BX
	ANDQ  $3, CX
	TESTQ BX, BX
	JZ    tail

loop4:
	STEP(0)
	STEP(64)
	STEP(128)
	STEP(192)
	ADDQ $256, DI
	DECQ BX
	JNZ  loop4

tail:
	TESTQ CX, CX
	JZ    store

loop1:
	STEP(0)
	ADDQ $64, DI
	DECQ CX
	JNZ  loop1

store:
	MOVQ  acc+56(FP), AX
	TESTQ AX, AX
	JNZ   add
	STOREROW(Y0, Y1)
	STOREROW(Y2, Y3)
	STOREROW(Y4, Y5)
	STOREROW(Y6, Y7)
	STOREROW(Y8, Y9)
	STOREROW(Y10, Y11)
	VZEROUPPER
	RET

add:
	ADDROW(Y0, Y1)
	ADDROW(Y2, Y3)
	ADDROW(Y4, Y5)
	ADDROW(Y6, Y7)
	ADDROW(Y8, Y9)
	ADDROW(Y10, Y11)
	VZEROUPPER
	RET
