/* GET /metrics: the store reads (stats, project names, key count) block,
 * so they and the rendering run on the worker pool; the reply goes out on
 * the loop thread, as the query API does. */
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "obs/prom.h"
#include <stdbool.h>

typedef struct {
  lt_prom_route_t *route;
  lt_req_t *req;
  int64_t project;
  bool has_credentials;
  int rc;
  lt_buf_t out;
} job_t;

/* A scrape of every project with a few thousand label sets is a few MB. */
#define RENDER_CAP ((size_t)256 << 20)

static void reply(lt_req_t *r, void *arg) {
  job_t *j = arg;
  if (j->rc == 0) lt_reply(r, 200, LT_PROM_CONTENT_TYPE, j->out.ptr, j->out.len);
  else lt_reply_error(r, 500, "internal", "rendering the metrics failed; see the server log");
  lt_buf_free(&j->out);
  lt_free(j);
}

static void run(void *arg) {
  job_t *j = arg;
  lt_api_t *api = j->route->api;
  lt_store_t *s = api->store;
  lt_store_stats_t ss;
  lt_writer_stats_t ws;
  json_t *projects = NULL;
  int64_t keys = 1;
  lt_prom_render_opts_t o = {.version = j->route->version, .only_project = j->project};
  /* Anonymous callers see every project only while nothing is protected
   * by a key; otherwise the caller's project, as on every other route. */
  if (!j->has_credentials && s->ops->key_count(s, &keys) == 0 && keys == 0) o.only_project = 0;
  int rc = s->ops->stats(s, &ss);
  if (rc) lt_warn("metrics: reading store stats failed: %s", lt_strerror(rc));
  else o.store = &ss;
  if ((rc = s->ops->project_list(s, &projects))) lt_warn("metrics: listing projects failed: %s", lt_strerror(rc));
  o.projects = projects;
  if (api->writer) {
    lt_writer_stats(api->writer, &ws);
    o.writer = &ws;
  }
  lt_proxy_stats_t ps;
  if (j->route->proxy) {
    lt_proxy_stats(j->route->proxy, &ps);
    o.proxy = &ps;
  }
  lt_buf_init(&j->out, RENDER_CAP);
  j->rc = lt_prom_render(j->route->prom, &o, &j->out);
  if (j->rc) lt_error("metrics: rendering failed: %s", lt_strerror(j->rc));
  json_decref(projects);
  lt_req_post(j->req, reply, j);
}

void lt_prom_handle(lt_req_t *r, void *ud) {
  lt_prom_route_t *route = ud;
  job_t *j = lt_calloc(1, sizeof *j);
  if (!j) {
    lt_reply_error(r, 503, "overloaded", "out of memory");
    return;
  }
  j->route = route;
  j->req = r;
  j->project = lt_req_project(r);
  j->has_credentials = lt_req_has_credentials(r);
  lt_api_submit(route->api, r, run, j, lt_free);
}
