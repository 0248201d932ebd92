/* stderr logger: "2026-01-02T03:04:05.678Z INFO message". */
#include "core/log.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int min_level = LT_LOG_INFO;
static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void lt_log_set_level(int level) { min_level = level; }

int lt_log_parse_level(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcasecmp(s, names[i]) == 0) return i;
  if (strcasecmp(s, "warning") == 0) return LT_LOG_WARN;
  return -1;
}

bool lt_log_due(_Atomic int64_t *last_s, int period_s) {
  int64_t now = (int64_t)time(NULL), last = atomic_load(last_s);
  return (last == 0 || now - last >= period_s) && atomic_compare_exchange_strong(last_s, &last, now);
}

void lt_log(int level, const char *fmt, ...) {
  if (level < min_level) return;
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %s ", ts.tv_nsec / 1000000, names[level]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += m;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}
