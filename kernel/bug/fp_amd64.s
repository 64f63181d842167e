#include "textflag.h"

// func getfp() unsafe.Pointer
//
// NOFRAME: BP is left as the caller set it, so it is the caller's frame
// pointer.
TEXT ·getfp(SB),NOSPLIT|NOFRAME,$0-8
	MOVQ	BP, ret+0(FP)
	RET
