//go:build amd64 && !purego

#include "textflag.h"

// The vector passes of softmaxRow (softmax.go), eight float32 per step.
// Each computes exactly what the Go loop computes, operation by operation,
// so the results are bitwise equal.

// func softmaxScaleMaxAVX2(s *float32, n int, scale float32, mask *float32) float32
TEXT ·softmaxScaleMaxAVX2(SB), NOSPLIT, $0-36
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS scale+16(FP), Y1
	MOVQ         mask+24(FP), SI
	MOVL         $0xff800000, AX // -Inf
	VMOVD        AX, X0
	VBROADCASTSS X0, Y0
	TESTQ        SI, SI
	JZ           nomask

masked:
	VMULPS  (DI), Y1, Y2
	VADDPS  (SI), Y2, Y2
	VMOVUPS Y2, (DI)
	VMAXPS  Y2, Y0, Y0
	ADDQ    $32, DI
	ADDQ    $32, SI
	SUBQ    $8, CX
	JNZ     masked
	JMP     reduce

nomask:
	VMULPS  (DI), Y1, Y2
	VMOVUPS Y2, (DI)
	VMAXPS  Y2, Y0, Y0
	ADDQ    $32, DI
	SUBQ    $8, CX
	JNZ     nomask

reduce:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+32(FP)
	RET

// softmaxExpSumAVX2 handles 16 elements per iteration as four independent
// chains of four float64 (registers: value Y, integer part T, polynomial U),
// interleaved so the long Horner chains overlap. Per chain, in expf's order:
//   t = x·log2e; n = floor(t + 0.5); u = (t − n)·ln2
//   q = c0; q = q·u + c_k (k = 1..8); e = q·2^n (exponent bits from n)
// then e is rounded to float32, clamped as expf clamps (x < expLo → 0,
// x > expHi → +Inf; x is recomputed from s for the masks), stored, widened
// again and added to the lane sums Y1 (lanes 0–3) and Y2 (lanes 4–7).
// R10 points at expTable: log2e 0, 0.5 32, ln2 64, c_k 96+32k, 1023 384.
// R11 points at expClamp: expLo 0, expHi 32, +Inf 64 (eight float32 each).
// The remaining n%16 (0 or 8) elements take the same path with two chains.

// func softmaxExpSumAVX2(s *float32, n int, mx float32, lanes *[8]float64, table *[13][4]float64, clamp *[3][8]float32)
TEXT ·softmaxExpSumAVX2(SB), NOSPLIT, $0-48
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS mx+16(FP), Y0
	MOVQ         lanes+24(FP), SI
	MOVQ         table+32(FP), R10
	MOVQ         clamp+40(FP), R11
	VMOVUPD      (SI), Y1
	VMOVUPD      32(SI), Y2
	MOVQ         CX, BX
	SHRQ         $4, BX
	ANDQ         $15, CX
	TESTQ        BX, BX
	JZ           half

loop16:
	VMOVUPS      0(DI), Y15
	VSUBPS       Y0, Y15, Y15
	VCVTPS2PD    X15, Y3
	VEXTRACTF128 $1, Y15, X15
	VCVTPS2PD    X15, Y6
	VMOVUPS      32(DI), Y15
	VSUBPS       Y0, Y15, Y15
	VCVTPS2PD    X15, Y9
	VEXTRACTF128 $1, Y15, X15
	VCVTPS2PD    X15, Y12
	VMULPD       0(R10), Y3, Y3
	VMULPD       0(R10), Y6, Y6
	VMULPD       0(R10), Y9, Y9
	VMULPD       0(R10), Y12, Y12
	VADDPD       32(R10), Y3, Y4
	VADDPD       32(R10), Y6, Y7
	VADDPD       32(R10), Y9, Y10
	VADDPD       32(R10), Y12, Y13
	VROUNDPD     $1, Y4, Y4
	VROUNDPD     $1, Y7, Y7
	VROUNDPD     $1, Y10, Y10
	VROUNDPD     $1, Y13, Y13
	VSUBPD       Y4, Y3, Y3
	VSUBPD       Y7, Y6, Y6
	VSUBPD       Y10, Y9, Y9
	VSUBPD       Y13, Y12, Y12
	VMULPD       64(R10), Y3, Y3
	VMULPD       64(R10), Y6, Y6
	VMULPD       64(R10), Y9, Y9
	VMULPD       64(R10), Y12, Y12
	VMOVUPD      96(R10), Y5
	VMOVUPD      96(R10), Y8
	VMOVUPD      96(R10), Y11
	VMOVUPD      96(R10), Y14
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VMULPD       Y9, Y11, Y11
	VMULPD       Y12, Y14, Y14
	VADDPD       128(R10), Y5, Y5
	VADDPD       128(R10), Y8, Y8
	VADDPD       128(R10), Y11, Y11
	VADDPD       128(R10), Y14, Y14
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VMULPD       Y9, Y11, Y11
	VMULPD       Y12, Y14, Y14
	VADDPD       160(R10), Y5, Y5
	VADDPD       160(R10), Y8, Y8
	VADDPD       160(R10), Y11, Y11
	VADDPD       160(R10), Y14, Y14
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VMULPD       Y9, Y11, Y11
	VMULPD       Y12, Y14, Y14
	VADDPD       192(R10), Y5, Y5
	VADDPD       192(R10), Y8, Y8
	VADDPD       192(R10), Y11, Y11
	VADDPD       192(R10), Y14, Y14
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VMULPD       Y9, Y11, Y11
	VMULPD       Y12, Y14, Y14
	VADDPD       224(R10), Y5, Y5
	VADDPD       224(R10), Y8, Y8
	VADDPD       224(R10), Y11, Y11
	VADDPD       224(R10), Y14, Y14
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VMULPD       Y9, Y11, Y11
	VMULPD       Y12, Y14, Y14
	VADDPD       256(R10), Y5, Y5
	VADDPD       256(R10), Y8, Y8
	VADDPD       256(R10), Y11, Y11
	VADDPD       256(R10), Y14, Y14
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VMULPD       Y9, Y11, Y11
	VMULPD       Y12, Y14, Y14
	VADDPD       288(R10), Y5, Y5
	VADDPD       288(R10), Y8, Y8
	VADDPD       288(R10), Y11, Y11
	VADDPD       288(R10), Y14, Y14
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VMULPD       Y9, Y11, Y11
	VMULPD       Y12, Y14, Y14
	VADDPD       320(R10), Y5, Y5
	VADDPD       320(R10), Y8, Y8
	VADDPD       320(R10), Y11, Y11
	VADDPD       320(R10), Y14, Y14
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VMULPD       Y9, Y11, Y11
	VMULPD       Y12, Y14, Y14
	VADDPD       352(R10), Y5, Y5
	VADDPD       352(R10), Y8, Y8
	VADDPD       352(R10), Y11, Y11
	VADDPD       352(R10), Y14, Y14
	VCVTPD2DQY   Y4, X4
	VCVTPD2DQY   Y7, X7
	VCVTPD2DQY   Y10, X10
	VCVTPD2DQY   Y13, X13
	VPMOVSXDQ    X4, Y4
	VPMOVSXDQ    X7, Y7
	VPMOVSXDQ    X10, Y10
	VPMOVSXDQ    X13, Y13
	VPADDQ       384(R10), Y4, Y4
	VPADDQ       384(R10), Y7, Y7
	VPADDQ       384(R10), Y10, Y10
	VPADDQ       384(R10), Y13, Y13
	VPSLLQ       $52, Y4, Y4
	VPSLLQ       $52, Y7, Y7
	VPSLLQ       $52, Y10, Y10
	VPSLLQ       $52, Y13, Y13
	VMULPD       Y4, Y5, Y3
	VMULPD       Y7, Y8, Y6
	VMULPD       Y10, Y11, Y9
	VMULPD       Y13, Y14, Y12
	VCVTPD2PSY   Y3, X3
	VCVTPD2PSY   Y6, X6
	VCVTPD2PSY   Y9, X9
	VCVTPD2PSY   Y12, X12
	VINSERTF128  $1, X6, Y3, Y3
	VMOVUPS      0(DI), Y15
	VSUBPS       Y0, Y15, Y15
	VCMPPS       $1, 0(R11), Y15, Y4
	VCMPPS       $0x1e, 32(R11), Y15, Y5
	VANDNPS      Y3, Y4, Y3
	VBLENDVPS    Y5, 64(R11), Y3, Y3
	VMOVUPS      Y3, 0(DI)
	VCVTPS2PD    X3, Y4
	VADDPD       Y4, Y1, Y1
	VEXTRACTF128 $1, Y3, X5
	VCVTPS2PD    X5, Y5
	VADDPD       Y5, Y2, Y2
	VINSERTF128  $1, X12, Y9, Y9
	VMOVUPS      32(DI), Y15
	VSUBPS       Y0, Y15, Y15
	VCMPPS       $1, 0(R11), Y15, Y10
	VCMPPS       $0x1e, 32(R11), Y15, Y11
	VANDNPS      Y9, Y10, Y9
	VBLENDVPS    Y11, 64(R11), Y9, Y9
	VMOVUPS      Y9, 32(DI)
	VCVTPS2PD    X9, Y10
	VADDPD       Y10, Y1, Y1
	VEXTRACTF128 $1, Y9, X11
	VCVTPS2PD    X11, Y11
	VADDPD       Y11, Y2, Y2
	ADDQ         $64, DI
	DECQ         BX
	JNZ          loop16

half:
	TESTQ        CX, CX
	JZ           done
	VMOVUPS      0(DI), Y15
	VSUBPS       Y0, Y15, Y15
	VCVTPS2PD    X15, Y3
	VEXTRACTF128 $1, Y15, X15
	VCVTPS2PD    X15, Y6
	VMULPD       0(R10), Y3, Y3
	VMULPD       0(R10), Y6, Y6
	VADDPD       32(R10), Y3, Y4
	VADDPD       32(R10), Y6, Y7
	VROUNDPD     $1, Y4, Y4
	VROUNDPD     $1, Y7, Y7
	VSUBPD       Y4, Y3, Y3
	VSUBPD       Y7, Y6, Y6
	VMULPD       64(R10), Y3, Y3
	VMULPD       64(R10), Y6, Y6
	VMOVUPD      96(R10), Y5
	VMOVUPD      96(R10), Y8
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VADDPD       128(R10), Y5, Y5
	VADDPD       128(R10), Y8, Y8
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VADDPD       160(R10), Y5, Y5
	VADDPD       160(R10), Y8, Y8
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VADDPD       192(R10), Y5, Y5
	VADDPD       192(R10), Y8, Y8
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VADDPD       224(R10), Y5, Y5
	VADDPD       224(R10), Y8, Y8
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VADDPD       256(R10), Y5, Y5
	VADDPD       256(R10), Y8, Y8
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VADDPD       288(R10), Y5, Y5
	VADDPD       288(R10), Y8, Y8
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VADDPD       320(R10), Y5, Y5
	VADDPD       320(R10), Y8, Y8
	VMULPD       Y3, Y5, Y5
	VMULPD       Y6, Y8, Y8
	VADDPD       352(R10), Y5, Y5
	VADDPD       352(R10), Y8, Y8
	VCVTPD2DQY   Y4, X4
	VCVTPD2DQY   Y7, X7
	VPMOVSXDQ    X4, Y4
	VPMOVSXDQ    X7, Y7
	VPADDQ       384(R10), Y4, Y4
	VPADDQ       384(R10), Y7, Y7
	VPSLLQ       $52, Y4, Y4
	VPSLLQ       $52, Y7, Y7
	VMULPD       Y4, Y5, Y3
	VMULPD       Y7, Y8, Y6
	VCVTPD2PSY   Y3, X3
	VCVTPD2PSY   Y6, X6
	VINSERTF128  $1, X6, Y3, Y3
	VMOVUPS      0(DI), Y15
	VSUBPS       Y0, Y15, Y15
	VCMPPS       $1, 0(R11), Y15, Y4
	VCMPPS       $0x1e, 32(R11), Y15, Y5
	VANDNPS      Y3, Y4, Y3
	VBLENDVPS    Y5, 64(R11), Y3, Y3
	VMOVUPS      Y3, 0(DI)
	VCVTPS2PD    X3, Y4
	VADDPD       Y4, Y1, Y1
	VEXTRACTF128 $1, Y3, X5
	VCVTPS2PD    X5, Y5
	VADDPD       Y5, Y2, Y2

done:
	VMOVUPD Y1, (SI)
	VMOVUPD Y2, 32(SI)
	VZEROUPPER
	RET

// func softmaxScaleAVX2(s *float32, n int, inv float64)
TEXT ·softmaxScaleAVX2(SB), NOSPLIT, $0-24
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSD inv+16(FP), Y0

scale:
	VCVTPS2PD  (DI), Y1
	VCVTPS2PD  16(DI), Y2
	VMULPD     Y0, Y1, Y1
	VMULPD     Y0, Y2, Y2
	VCVTPD2PSY Y1, X1
	VCVTPD2PSY Y2, X2
	VMOVUPS    X1, (DI)
	VMOVUPS    X2, 16(DI)
	ADDQ       $32, DI
	SUBQ       $8, CX
	JNZ        scale
	VZEROUPPER
	RET
