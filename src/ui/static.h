/* The web UI: files built from web/ (docs/ui.md) are compiled into the
 * binary (build/gen/ui_assets.c, written by scripts/embed-ui.sh) and served
 * from memory by one route registered last, as the fallback for every path
 * no other route takes.
 *
 * - "/" and the files themselves are served to any GET/HEAD; content-hashed
 *   files under /assets/ are cached forever, index.html is revalidated.
 * - Any other path serves index.html when the client asks for HTML (a
 *   browser following a deep link such as /traces/<id>), so the page's
 *   router takes over; API clients keep getting JSON 404s, and the /api/,
 *   /v1/ and /proxy/ namespaces never fall back to HTML.
 * - A path another route owns with a different method keeps its 405.
 * - The precompressed gzip copy is sent when the client accepts gzip. */
#ifndef LT_UI_STATIC_H
#define LT_UI_STATIC_H
#include <stddef.h>
#include "net/http.h"

typedef struct {
  const char *path;          /* "/index.html", "/assets/app-HASH.js"; NULL ends the table */
  const unsigned char *body;
  size_t len;
  const unsigned char *gz;   /* gzip of body, or NULL */
  size_t gz_len;
} lt_ui_asset_t;

/* Generated. Static data: nothing to free. */
extern const lt_ui_asset_t lt_ui_assets[];

/* Route handler for "/" (prefix, every method, no auth). ud is the server's
 * route table (ending with path NULL), read to answer 405 for paths other
 * routes own. Replies at once from memory; never blocks. */
void lt_ui_handle(lt_req_t *r, void *ud);

#endif
