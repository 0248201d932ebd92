/* The share of the CPU background work takes while requests arrive: the
 * rule the writer's background slices and the full-text indexer follow. */
#ifndef LT_CORE_SHARE_H
#define LT_CORE_SHARE_H
#include <stdint.h>

/* How many lengths of its last piece of work background work waits before
 * the next (0: it runs whenever it can, 3: a quarter of the time), given
 * the process CPU time over one window, the part of it that background
 * work itself took, the window's wall time and the number of cores: while
 * the rest of the server uses half the cores or more, a quarter. */
int lt_bg_off(int64_t cpu_ns, int64_t bg_ns, int64_t wall_ns, int ncpu);

#endif
