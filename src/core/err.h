/* Lanterna's one error enum. Fallible functions return int: 0 is success,
 * a negative LT_E* value is the failure. Names and messages come from one
 * X-macro list so they never drift apart. */
#ifndef LT_ERR_H
#define LT_ERR_H

#define LT_ERRNO_MAP(X)                                              \
  X(NOMEM,     "out of memory")                                      \
  X(INVAL,     "invalid argument")                                   \
  X(DECODE,    "undecodable input")                                  \
  X(TOOBIG,    "input exceeds a size limit")                         \
  X(FULL,      "queue is full")                                      \
  X(NOTFOUND,  "not found")                                          \
  X(EXISTS,    "already exists")                                     \
  X(AUTH,      "unauthenticated")                                    \
  X(FORBIDDEN, "forbidden")                                          \
  X(IO,        "input/output error")                                 \
  X(DB,        "database error")                                     \
  X(NOSPACE,   "no space left on the data directory's disk")         \
  X(UNSUPPORTED, "unsupported")                                      \
  X(SHUTDOWN,  "server is shutting down")                            \
  X(CONFIG,    "bad configuration")

enum {
  LT_OK = 0,
#define LT_ERR_ENUM_(name, msg) LT_E##name,
  LT__ERR_FIRST = -1000,
  LT_ERRNO_MAP(LT_ERR_ENUM_)
#undef LT_ERR_ENUM_
  LT__ERR_LAST
};

/* Returns a static, human readable message for rc (0 or an LT_E* value). */
const char *lt_strerror(int rc);
/* Returns the symbolic name ("NOMEM", ...) for rc. */
const char *lt_errname(int rc);

#endif
