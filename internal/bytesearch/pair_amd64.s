#include "textflag.h"

// func pairVector(s []byte, c0, c1 byte) (base int, mask uint64)
//
// Two blocks of 32 places a turn while both fit (the loads at i+1 read
// up to i+64); the caller takes the last places, fewer than 65, one by
// one. A place is a candidate when its byte is c0 and the next is c1:
// the compare of the block at i with c0 ANDed with the compare of the
// block at i+1 with c1.
TEXT ·pairVector(SB), NOSPLIT, $0-48
	MOVQ s_base+0(FP), SI
	MOVQ s_len+8(FP), DX
	MOVBLZX c0+24(FP), AX
	MOVBLZX c1+25(FP), BX
	VMOVQ AX, X0
	VPBROADCASTB X0, Y0
	VMOVQ BX, X1
	VPBROADCASTB X1, Y1
	XORQ CX, CX
	MOVQ DX, R8
	SUBQ $65, R8 // last i of a double turn

double:
	CMPQ CX, R8
	JG   none
	VMOVDQU (SI)(CX*1), Y2
	VMOVDQU 1(SI)(CX*1), Y3
	VMOVDQU 32(SI)(CX*1), Y4
	VMOVDQU 33(SI)(CX*1), Y5
	VPCMPEQB Y0, Y2, Y2
	VPCMPEQB Y1, Y3, Y3
	VPCMPEQB Y0, Y4, Y4
	VPCMPEQB Y1, Y5, Y5
	VPAND Y2, Y3, Y3
	VPAND Y4, Y5, Y5
	VPOR  Y3, Y5, Y6
	VPTEST Y6, Y6
	JNZ  doublehit
	ADDQ $64, CX
	JMP  double

doublehit:
	VPMOVMSKB Y3, AX
	VPMOVMSKB Y5, BX
	SHLQ $32, BX
	ORQ  BX, AX
	MOVQ CX, base+32(FP)
	MOVQ AX, mask+40(FP)
	VZEROUPPER
	RET

none:
	MOVQ CX, base+32(FP)
	MOVQ $0, mask+40(FP)
	VZEROUPPER
	RET

// func setVector(s []byte, table *[2 * maxSet][32]byte, n int) (base int, mask uint64)
//
// pairVector for n pairs at once, one block of 32 places a turn: a place
// is a candidate when its byte and the next are those of pair k (table
// 2k and 2k+1, each its byte 32 times) for some k < n. n >= 1.
TEXT ·setVector(SB), NOSPLIT, $0-56
	MOVQ s_base+0(FP), SI
	MOVQ s_len+8(FP), DX
	MOVQ table+24(FP), DI
	MOVQ n+32(FP), R10
	XORQ CX, CX
	SUBQ $33, DX // last i of a block

block:
	CMPQ CX, DX
	JG   setnone
	VMOVDQU (SI)(CX*1), Y0
	VMOVDQU 1(SI)(CX*1), Y1
	VPXOR Y2, Y2, Y2
	MOVQ DI, R11
	MOVQ R10, R12

pair:
	VPCMPEQB (R11), Y0, Y3
	VPCMPEQB 32(R11), Y1, Y4
	VPAND Y3, Y4, Y4
	VPOR  Y4, Y2, Y2
	ADDQ $64, R11
	DECQ R12
	JNZ  pair
	VPMOVMSKB Y2, AX
	TESTL AX, AX
	JNZ  sethit
	ADDQ $32, CX
	JMP  block

sethit:
	MOVQ CX, base+40(FP)
	MOVQ AX, mask+48(FP)
	VZEROUPPER
	RET

setnone:
	MOVQ CX, base+40(FP)
	MOVQ $0, mask+48(FP)
	VZEROUPPER
	RET

// func classVector(s []byte, tables *[4][32]byte) (base int, mask uint64)
//
// setVector for a set of at most eight groups of pairs (a group: the
// pairs of one second byte), in a few instructions a block whatever the
// number of pairs: each byte's class bits are looked up by its low and
// its high nibble (VPSHUFB in tables 0 and 1 for a place's own byte, 2
// and 3 for the next byte; each table's 16 bytes twice, one a lane) and
// ANDed; a place is a candidate when its byte and the next share a bit.
// A byte whose nibbles come from two of a group's first bytes is one too
// (the caller verifies each candidate).
TEXT ·classVector(SB), NOSPLIT, $0-48
	MOVQ s_base+0(FP), SI
	MOVQ s_len+8(FP), DX
	MOVQ tables+24(FP), DI
	VMOVDQU (DI), Y8
	VMOVDQU 32(DI), Y9
	VMOVDQU 64(DI), Y10
	VMOVDQU 96(DI), Y11
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VPXOR Y14, Y14, Y14
	XORQ CX, CX
	SUBQ $33, DX // last i of a block

cblock:
	CMPQ CX, DX
	JG   cnone
	VMOVDQU (SI)(CX*1), Y0
	VMOVDQU 1(SI)(CX*1), Y1
	VPAND Y15, Y0, Y2
	VPSRLW $4, Y0, Y3
	VPAND Y15, Y3, Y3
	VPSHUFB Y2, Y8, Y2
	VPSHUFB Y3, Y9, Y3
	VPAND Y2, Y3, Y4 // the place's byte's classes
	VPAND Y15, Y1, Y2
	VPSRLW $4, Y1, Y3
	VPAND Y15, Y3, Y3
	VPSHUFB Y2, Y10, Y2
	VPSHUFB Y3, Y11, Y3
	VPAND Y2, Y3, Y5 // the next byte's
	VPAND Y4, Y5, Y5
	VPCMPEQB Y14, Y5, Y5 // 0xff where none is shared
	VPMOVMSKB Y5, AX
	NOTL AX
	TESTL AX, AX
	JNZ  chit
	ADDQ $32, CX
	JMP  cblock

chit:
	MOVQ CX, base+32(FP)
	MOVQ AX, mask+40(FP)
	VZEROUPPER
	RET

cnone:
	MOVQ CX, base+32(FP)
	MOVQ $0, mask+40(FP)
	VZEROUPPER
	RET
