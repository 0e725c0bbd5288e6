/* Bounded tables the sampler fills while it holds the GIL: nothing here allocates, frees or
 * calls into Python. Every table is a dense array plus an open-addressing index of int32 slots
 * (-1 = empty), sized once when the sampler is made; a full table refuses the insert and the
 * caller counts what it lost.
 */
#ifndef DURAGRAPH_TABLES_H
#define DURAGRAPH_TABLES_H

#include <stdint.h>
#include <string.h>

static inline uint64_t dg_mix(uint64_t x)
{ /* splitmix64's finaliser: pointers differ in few bits */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

typedef struct {
    int32_t *slots;
    uint32_t mask; /* slot count - 1; the count is a power of two, twice the capacity */
} dg_index;

static inline int dg_index_init(dg_index *ix, uint32_t capacity)
{
    uint32_t n = 1;
    while (n < capacity * 2)
        n <<= 1;
    ix->slots = malloc(sizeof(int32_t) * n);
    if (ix->slots == NULL)
        return -1;
    ix->mask = n - 1;
    memset(ix->slots, 0xff, sizeof(int32_t) * n);
    return 0;
}

static inline void dg_index_clear(dg_index *ix)
{
    memset(ix->slots, 0xff, sizeof(int32_t) * (ix->mask + 1));
}

static inline void dg_index_free(dg_index *ix)
{
    free(ix->slots);
    ix->slots = NULL;
}

/* The slot for `hash`: the first that is empty or whose entry `same` accepts. */
#define DG_PROBE(ix, hash, same_expr, out_slot)                                                   \
    do {                                                                                          \
        uint32_t dg_i_ = (uint32_t)(hash) & (ix)->mask;                                           \
        for (;;) {                                                                                \
            int32_t e = (ix)->slots[dg_i_];                                                       \
            if (e < 0 || (same_expr))                                                             \
                break;                                                                            \
            dg_i_ = (dg_i_ + 1) & (ix)->mask;                                                     \
        }                                                                                         \
        (out_slot) = dg_i_;                                                                       \
    } while (0)

#endif
