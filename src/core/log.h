/* Leveled logging to stderr, one line per message, with a timestamp.
 * Thread-safe (one write(2) per line). */
#ifndef LT_LOG_H
#define LT_LOG_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { LT_LOG_DEBUG, LT_LOG_INFO, LT_LOG_WARN, LT_LOG_ERROR };

void lt_log_set_level(int level);
/* Parses "debug|info|warn|error"; returns the level or -1. */
int lt_log_parse_level(const char *s);
void lt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For a message that could repeat many times a second: true at most once
 * per period_s seconds for one *last_s (zero-initialised; any thread). */
bool lt_log_due(_Atomic int64_t *last_s, int period_s);

#define lt_debug(...) lt_log(LT_LOG_DEBUG, __VA_ARGS__)
#define lt_info(...) lt_log(LT_LOG_INFO, __VA_ARGS__)
#define lt_warn(...) lt_log(LT_LOG_WARN, __VA_ARGS__)
#define lt_error(...) lt_log(LT_LOG_ERROR, __VA_ARGS__)

#endif
