/* Helpers over decoded OTLP structures. */
#include "model/otlp.h"

const lt_val_t *lt_attrs_get(const lt_attrs_t *attrs, const char *key) {
  size_t klen = strlen(key);
  for (size_t i = 0; i < attrs->n; i++) {
    const lt_kv_t *kv = &attrs->items[i];
    if (kv->key.len == klen && memcmp(kv->key.ptr, key, klen) == 0) return &kv->val;
  }
  return NULL;
}
