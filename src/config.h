/* Server configuration: defaults, then the config file (--config FILE,
 * "key = value" lines), then LANTERNA_<KEY> environment variables, then
 * command-line flags; later sources win. Keys are the long flag names. */
#ifndef LT_CONFIG_H
#define LT_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char listen[256];
  char host[256];
  int port;
  char data[1024];
  char storage[32];
  char config[1024];
  char durability[16];
  char compression[8];
  int64_t retention_ns;
  bool insecure_no_auth;
  char log_level[16];
  int threads;
  size_t max_body;
  int max_connections;
  int idle_timeout_s;
  size_t queue_bytes;
  int read_connections;
  /* --prices FILE, repeatable: price files merged over the shipped table. */
#define LT_CONFIG_MAX_PRICE_FILES 8
  char prices[LT_CONFIG_MAX_PRICE_FILES][1024];
  int n_prices;
  char feature_key[128]; /* metadata key naming a span's feature */
  /* Proxy: --upstream NAME=BASE_URL (repeatable), the response copy kept
   * per call, and whether OpenAI streams are asked for usage. */
#define LT_CONFIG_MAX_UPSTREAMS 32
  char upstreams[LT_CONFIG_MAX_UPSTREAMS][1100];
  int n_upstreams;
  size_t proxy_capture;
  bool proxy_stream_usage;
  size_t proxy_cache_size;
  int proxy_retries;
  int64_t proxy_first_byte_timeout_ns, proxy_idle_timeout_ns;
  char upstream_ca[1024];
  /* Repeatable rule lists: --limit, --cache-upstream, --fallback. */
#define LT_CONFIG_MAX_RULES 32
  char limits[LT_CONFIG_MAX_RULES][256];
  int n_limits;
  char cache_upstreams[LT_CONFIG_MAX_RULES][128];
  int n_cache_upstreams;
  char fallbacks[LT_CONFIG_MAX_RULES][256];
  int n_fallbacks;
  /* --require-auth (not in --help): refuse anonymous requests even on a
   * loopback address (docs/api.md, Authentication). */
  bool require_auth;
} lt_config_t;

void lt_config_defaults(lt_config_t *c);
/* Applies one key/value (from any source). Returns 0, or LT_ECONFIG after
 * writing a message that says what to change into err[errlen]. */
int lt_config_set(lt_config_t *c, const char *key, const char *value, char *err, size_t errlen);
/* Reads a config file. Returns 0 or LT_ECONFIG with err filled. */
int lt_config_file(lt_config_t *c, const char *path, char *err, size_t errlen);
/* Applies LANTERNA_* environment variables. */
int lt_config_env(lt_config_t *c, char *err, size_t errlen);
/* True when key names a boolean flag (no value on the command line). */
bool lt_config_is_flag(const char *key);
/* True when key names a serve option (without its leading --). */
bool lt_config_known(const char *key);
/* True when host only accepts loopback connections. */
bool lt_config_loopback(const lt_config_t *c);
/* Parses "64MiB", "512k", "1048576"; "30d", "12h", "90m", "45s". */
int lt_parse_size(const char *s, size_t *out);
int lt_parse_duration(const char *s, int64_t *ns);

#endif
