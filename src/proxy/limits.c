/* Rate limits and budgets (limits.h). Counters live in one hash table
 * keyed by (rule, subject), under one mutex: admission is a few
 * arithmetic operations per applicable rule. The table is bounded; when
 * full, the least recently touched counters go first. */
#include "proxy/limits.h"
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/err.h"
#include "core/mem.h"

#define MAX_RULES 32
#define MAX_COUNTERS 100000
#define NSLOTS 65536

enum { M_REQ, M_TOK, M_USD, M__N };
static const char *const metric_names[M__N] = {"requests", "tokens", "usd"};

typedef enum { S_GLOBAL, S_KEY, S_USER, S_PROP } scope_t;

typedef struct {
  char text[160];
  scope_t scope;
  char prop[64];
  double limit[M__N];     /* <= 0: not limited */
  int64_t window_ns[M__N];
} rule_t;

typedef struct counter {
  int rule;
  char *subject;
  int64_t start[M__N];    /* current window's start */
  double cur[M__N], prev[M__N];
  int64_t touched_ns;
  struct counter *next;
} counter_t;

struct lt_limits {
  rule_t rules[MAX_RULES];
  int n;
  pthread_mutex_t mu;
  counter_t **slots;
  size_t count;
};

lt_limits_t *lt_limits_new(void) {
  lt_limits_t *l = lt_calloc(1, sizeof *l);
  if (!l) return NULL;
  if (!(l->slots = lt_calloc(NSLOTS, sizeof *l->slots))) {
    lt_free(l);
    return NULL;
  }
  pthread_mutex_init(&l->mu, NULL);
  return l;
}

void lt_limits_free(lt_limits_t *l) {
  if (!l) return;
  for (size_t i = 0; i < NSLOTS; i++) {
    for (counter_t *c = l->slots[i], *n; c; c = n) {
      n = c->next;
      lt_free(c->subject);
      lt_free(c);
    }
  }
  lt_free(l->slots);
  pthread_mutex_destroy(&l->mu);
  lt_free(l);
}

size_t lt_limits_count(const lt_limits_t *l) { return (size_t)l->n; }

static int parse_window(const char *s, int64_t *ns) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || v <= 0) return -1;
  double mul;
  if (!*end || !strcmp(end, "s")) mul = 1e9;
  else if (!strcmp(end, "m")) mul = 60e9;
  else if (!strcmp(end, "h")) mul = 3600e9;
  else if (!strcmp(end, "d")) mul = 86400e9;
  else return -1;
  if (v * mul > 366 * 86400e9) return -1;
  *ns = (int64_t)(v * mul);
  return 0;
}

int lt_limits_add(lt_limits_t *l, const char *spec, char *err, size_t errlen) {
  if (l->n == MAX_RULES) {
    snprintf(err, errlen, "--limit: at most %d rules", MAX_RULES);
    return LT_ECONFIG;
  }
  rule_t r = {0};
  snprintf(r.text, sizeof r.text, "%s", spec);
  char buf[512];
  snprintf(buf, sizeof buf, "%s", spec);
  bool have_scope = false, have_limit = false;
  for (char *save = NULL, *part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
    while (isspace((unsigned char)*part)) part++;
    char *eq = strchr(part, '=');
    if (!eq) {
      snprintf(err, errlen, "--limit '%s': expected key=value parts, got '%s'", spec, part);
      return LT_ECONFIG;
    }
    *eq = '\0';
    const char *k = part, *v = eq + 1;
    if (!strcmp(k, "scope")) {
      have_scope = true;
      if (!strcmp(v, "global")) r.scope = S_GLOBAL;
      else if (!strcmp(v, "key")) r.scope = S_KEY;
      else if (!strcmp(v, "user")) r.scope = S_USER;
      else if (!strncmp(v, "property:", 9) && v[9] && strlen(v + 9) < sizeof r.prop) {
        r.scope = S_PROP;
        snprintf(r.prop, sizeof r.prop, "%s", v + 9);
      } else {
        snprintf(err, errlen, "--limit '%s': scope is key, user, property:NAME or global, got '%s'", spec, v);
        return LT_ECONFIG;
      }
      continue;
    }
    int m = -1;
    for (int i = 0; i < M__N; i++)
      if (!strcmp(k, metric_names[i])) m = i;
    const char *slash = strchr(v, '/');
    char *end = NULL;
    double amount = slash ? strtod(v, &end) : 0;
    if (m < 0 || !slash || end != slash || !(amount > 0) || !isfinite(amount) ||
        parse_window(slash + 1, &r.window_ns[m])) {
      snprintf(err, errlen,
               "--limit '%s': expected requests=N/WINDOW, tokens=N/WINDOW or usd=X/WINDOW (WINDOW like 60s, 1m, 1h, 1d), "
               "got '%s=%s'", spec, k, v);
      return LT_ECONFIG;
    }
    r.limit[m] = amount;
    have_limit = true;
  }
  if (!have_scope || !have_limit) {
    snprintf(err, errlen, "--limit '%s': needs a scope and at least one of requests, tokens, usd "
             "(for example scope=user,requests=60/1m,usd=5/1d)", spec);
    return LT_ECONFIG;
  }
  l->rules[l->n++] = r;
  return 0;
}

static const char *subject_of(const rule_t *r, const lt_limit_subject_t *s) {
  switch (r->scope) {
  case S_GLOBAL: return "*";
  case S_KEY: return s->key && *s->key ? s->key : NULL;
  case S_USER: return s->user && *s->user ? s->user : NULL;
  case S_PROP: {
    const char *v = s->property ? s->property(s->ud, r->prop) : NULL;
    return v && *v ? v : NULL;
  }
  }
  return NULL;
}

static uint64_t hash(int rule, const char *s) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)rule;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static void evict_oldest(lt_limits_t *l) {
  counter_t **victim = NULL;
  int64_t oldest = INT64_MAX;
  /* A full sweep, only when the table is full: rare by construction. */
  for (size_t i = 0; i < NSLOTS; i++)
    for (counter_t **pp = &l->slots[i]; *pp; pp = &(*pp)->next)
      if ((*pp)->touched_ns < oldest) {
        oldest = (*pp)->touched_ns;
        victim = pp;
      }
  if (!victim) return;
  counter_t *c = *victim;
  *victim = c->next;
  lt_free(c->subject);
  lt_free(c);
  l->count--;
}

static counter_t *counter(lt_limits_t *l, int rule, const char *subject, int64_t now) {
  size_t slot = hash(rule, subject) & (NSLOTS - 1);
  for (counter_t *c = l->slots[slot]; c; c = c->next)
    if (c->rule == rule && !strcmp(c->subject, subject)) return c;
  if (l->count >= MAX_COUNTERS) evict_oldest(l);
  counter_t *c = lt_calloc(1, sizeof *c);
  if (!c || !(c->subject = lt_strdup(subject))) {
    lt_free(c);
    return NULL;
  }
  c->rule = rule;
  for (int m = 0; m < M__N; m++) c->start[m] = now;
  c->touched_ns = now;
  c->next = l->slots[slot];
  l->slots[slot] = c;
  l->count++;
  return c;
}

/* Moves the windows forward to now. */
static void roll(const rule_t *r, counter_t *c, int64_t now) {
  for (int m = 0; m < M__N; m++) {
    int64_t w = r->window_ns[m];
    if (w <= 0) continue;
    int64_t gone = (now - c->start[m]) / w;
    if (gone <= 0) continue;
    c->prev[m] = gone == 1 ? c->cur[m] : 0;
    c->cur[m] = 0;
    c->start[m] += gone * w;
  }
}

/* The sliding estimate: what the previous window still contributes plus
 * the current one. */
static double used(const rule_t *r, const counter_t *c, int m, int64_t now) {
  double frac = 1.0 - (double)(now - c->start[m]) / (double)r->window_ns[m];
  if (frac < 0) frac = 0;
  return c->prev[m] * frac + c->cur[m];
}

/* How long until a request (or any spend) fits again: the sliding
 * estimate falls as the previous window slides out, and a full current
 * window has to become the previous one first. */
static int64_t until_room(const rule_t *r, const counter_t *c, int m, int64_t now) {
  double need = m == M_REQ ? 1 : 1e-9, room = r->limit[m] - need;
  int64_t w = r->window_ns[m];
  if (room < 0) return w;
  double t; /* ns after the current window's start */
  if (c->cur[m] <= room) {
    /* In this window: prev * (1 - x) + cur <= room. */
    double x = c->prev[m] > 0 ? 1.0 - (room - c->cur[m]) / c->prev[m] : 0;
    t = (x > 0 ? x : 0) * (double)w;
  } else {
    /* Next window: the current count slides out: cur * (1 - y) <= room. */
    double y = 1.0 - room / c->cur[m];
    t = (double)w + (y > 0 ? y : 0) * (double)w;
  }
  int64_t at = c->start[m] + (int64_t)t;
  return at > now ? at - now : 0;
}

void lt_limits_admit(lt_limits_t *l, const lt_limit_subject_t *s, int64_t now, lt_limit_verdict_t *v) {
  memset(v, 0, sizeof *v);
  if (!l || !l->n) return;
  double best_frac = -1;
  pthread_mutex_lock(&l->mu);
  counter_t *hit[MAX_RULES] = {0};
  for (int i = 0; i < l->n; i++) {
    const rule_t *r = &l->rules[i];
    const char *subj = subject_of(r, s);
    if (!subj) continue;
    counter_t *c = counter(l, i, subj, now);
    if (!c) continue;
    hit[i] = c;
    c->touched_ns = now;
    roll(r, c, now);
    for (int m = 0; m < M__N; m++) {
      if (r->limit[m] <= 0) continue;
      double u = used(r, c, m, now);
      /* A request needs room for itself; tokens and dollars only need to
       * be under budget. */
      bool refuse = m == M_REQ ? u + 1 > r->limit[m] : u >= r->limit[m];
      double remaining = r->limit[m] - u - (m == M_REQ ? 1 : 0);
      double frac = remaining / r->limit[m];
      /* Report the refusing rule, else the one closest to its limit. */
      if ((refuse && !v->refused) || (!v->refused && (best_frac < 0 || frac < best_frac))) {
        best_frac = frac;
        v->any = true;
        v->refused = refuse;
        snprintf(v->rule, sizeof v->rule, "%s", r->text);
        snprintf(v->what, sizeof v->what, "%s", metric_names[m]);
        v->limit = r->limit[m];
        v->remaining = remaining > 0 ? remaining : 0;
        int64_t wait = until_room(r, c, m, now);
        v->reset_s = wait > 0 ? (wait + 999999999) / 1000000000 : 1;
      }
    }
  }
  if (!v->refused)
    for (int i = 0; i < l->n; i++)
      if (hit[i] && l->rules[i].limit[M_REQ] > 0) hit[i]->cur[M_REQ] += 1;
  pthread_mutex_unlock(&l->mu);
}

void lt_limits_charge(lt_limits_t *l, const lt_limit_subject_t *s, int64_t now, int64_t tokens, int64_t nusd) {
  if (!l || !l->n || (tokens <= 0 && nusd <= 0)) return;
  pthread_mutex_lock(&l->mu);
  for (int i = 0; i < l->n; i++) {
    const rule_t *r = &l->rules[i];
    if (r->limit[M_TOK] <= 0 && r->limit[M_USD] <= 0) continue;
    const char *subj = subject_of(r, s);
    counter_t *c = subj ? counter(l, i, subj, now) : NULL;
    if (!c) continue;
    roll(r, c, now);
    if (tokens > 0 && r->limit[M_TOK] > 0) c->cur[M_TOK] += (double)tokens;
    if (nusd > 0 && r->limit[M_USD] > 0) c->cur[M_USD] += (double)nusd / 1e9;
  }
  pthread_mutex_unlock(&l->mu);
}
