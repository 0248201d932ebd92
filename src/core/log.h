/* Leveled logging to stderr, one line per message, with a timestamp.
 * Thread-safe (one write(2) per line). */
#ifndef LT_LOG_H
#define LT_LOG_H

enum { LT_LOG_DEBUG, LT_LOG_INFO, LT_LOG_WARN, LT_LOG_ERROR };

void lt_log_set_level(int level);
/* Parses "debug|info|warn|error"; returns the level or -1. */
int lt_log_parse_level(const char *s);
void lt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define lt_debug(...) lt_log(LT_LOG_DEBUG, __VA_ARGS__)
#define lt_info(...) lt_log(LT_LOG_INFO, __VA_ARGS__)
#define lt_warn(...) lt_log(LT_LOG_WARN, __VA_ARGS__)
#define lt_error(...) lt_log(LT_LOG_ERROR, __VA_ARGS__)

#endif
