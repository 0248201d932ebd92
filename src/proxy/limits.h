/* Rate limits and budgets for the proxy: rules of the form
 *   scope=key|user|property:NAME|global, requests=N/WINDOW, tokens=N/WINDOW, usd=X/WINDOW
 * counted per subject (the caller's credential fingerprint, user id or
 * property value) over a sliding window (two fixed windows, the older one
 * weighted by how much of it still overlaps). Requests are counted when
 * admitted; tokens and dollars when the call ends, so the call that
 * crosses a budget completes and the next one is refused. In memory: the
 * counts restart with the server. See docs/proxy.md. */
#ifndef LT_LIMITS_H
#define LT_LIMITS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lt_limits lt_limits_t;

/* What a request is counted under. Empty strings: the subject is absent
 * and rules of that scope do not apply. */
typedef struct {
  const char *key;     /* credential fingerprint (hex) */
  const char *user;
  const char *(*property)(void *ud, const char *name); /* value of a Lanterna-Property-NAME, or NULL */
  void *ud;
} lt_limit_subject_t;

/* The most restrictive rule touched, for RateLimit-* headers. */
typedef struct {
  bool any;           /* some rule applied */
  bool refused;
  char rule[160];     /* the rule, as configured */
  char what[16];      /* "requests", "tokens" or "usd" */
  double limit, remaining;
  int64_t reset_s;    /* seconds until the window frees room */
} lt_limit_verdict_t;

lt_limits_t *lt_limits_new(void);
void lt_limits_free(lt_limits_t *l);
/* Adds a rule from its text. Returns 0 or LT_ECONFIG with a message. */
int lt_limits_add(lt_limits_t *l, const char *spec, char *err, size_t errlen);
size_t lt_limits_count(const lt_limits_t *l);

/* Checks every applicable rule at now_ns; when none refuses, counts the
 * request. Fills *v (refused, and the tightest rule's figures). */
void lt_limits_admit(lt_limits_t *l, const lt_limit_subject_t *s, int64_t now_ns, lt_limit_verdict_t *v);
/* Adds a finished call's tokens (-1: unknown) and cost (nano-dollars, -1:
 * unknown) to every applicable rule. */
void lt_limits_charge(lt_limits_t *l, const lt_limit_subject_t *s, int64_t now_ns, int64_t tokens, int64_t nusd);

#endif
