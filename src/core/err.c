/* Error names and messages, generated from LT_ERRNO_MAP. */
#include "core/err.h"

const char *lt_strerror(int rc) {
  switch (rc) {
  case LT_OK: return "ok";
#define LT_ERR_MSG_(name, msg) case LT_E##name: return msg;
  LT_ERRNO_MAP(LT_ERR_MSG_)
#undef LT_ERR_MSG_
  default: return "unknown error";
  }
}

const char *lt_errname(int rc) {
  switch (rc) {
  case LT_OK: return "OK";
#define LT_ERR_NAME_(name, msg) case LT_E##name: return #name;
  LT_ERRNO_MAP(LT_ERR_NAME_)
#undef LT_ERR_NAME_
  default: return "UNKNOWN";
  }
}
