#include "core/share.h"

int lt_bg_off(int64_t cpu_ns, int64_t bg_ns, int64_t wall_ns, int ncpu) {
  if (wall_ns <= 0 || ncpu < 1) return 3;
  int64_t other = cpu_ns - bg_ns; /* the CPU the server used besides background work */
  return 2 * other < (int64_t)ncpu * wall_ns ? 0 : 3;
}
