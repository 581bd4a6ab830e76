/* A branchy bytecode interpreter (a small stack machine, switch dispatch) running a program
 * that sums a Collatz-like sequence for each of `iterations` start values. */
#include "kernels.h"

enum op { PUSH, LOAD, STORE, ADD, SUB, MUL, SHR, AND, JZ, JMP, LT, HALT };


/* for s in 1..limit: x = s; while 1 < x: { total += x; x = x & 1 ? 3x + 1 : x >> 1 } */
static const int32_t program[] = {
    /* 0 */ PUSH, 1, STORE, 0,                               /* s = 1 */
    /* 4 */ LOAD, 0, LOAD, 3, LT, JZ, 66,                    /* while s < limit */
    /* 11 */ LOAD, 0, STORE, 1,                              /* x = s */
    /* 15 */ PUSH, 1, LOAD, 1, LT, JZ, 57,                   /* while 1 < x */
    /* 22 */ LOAD, 2, LOAD, 1, ADD, STORE, 2,                /* total += x */
    /* 29 */ LOAD, 1, PUSH, 1, AND, JZ, 48,                  /* if x is odd */
    /* 36 */ LOAD, 1, PUSH, 3, MUL, PUSH, 1, ADD, STORE, 1,  /* x = 3x + 1 */
    /* 46 */ JMP, 15,
    /* 48 */ LOAD, 1, PUSH, 1, SHR, STORE, 1,                /* else x = x / 2 */
    /* 55 */ JMP, 15,
    /* 57 */ LOAD, 0, PUSH, 1, ADD, STORE, 0,                /* s += 1 */
    /* 64 */ JMP, 4,
    /* 66 */ HALT,
};

uint32_t bench_interp(uint32_t iterations) {
    int32_t vars[4] = {0, 0, 0, (int32_t)iterations + 1};
    int32_t stack[16];
    int sp = 0, pc = 0;
    for (;;) {
        switch (program[pc++]) {
        case PUSH: stack[sp++] = program[pc++]; break;
        case LOAD: stack[sp++] = vars[program[pc++]]; break;
        case STORE: vars[program[pc++]] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] = (int32_t)((uint32_t)stack[sp - 1] + (uint32_t)stack[sp]); break;
        case SUB: sp--; stack[sp - 1] = (int32_t)((uint32_t)stack[sp - 1] - (uint32_t)stack[sp]); break;
        case MUL: sp--; stack[sp - 1] = (int32_t)((uint32_t)stack[sp - 1] * (uint32_t)stack[sp]); break;
        case SHR: sp--; stack[sp - 1] = (int32_t)((uint32_t)stack[sp - 1] >> stack[sp]); break;
        case AND: sp--; stack[sp - 1] &= stack[sp]; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case JZ: { int32_t target = program[pc++]; if (!stack[--sp]) pc = target; break; }
        case JMP: pc = program[pc]; break;
        case HALT: return (uint32_t)vars[2];
        }
    }
}
