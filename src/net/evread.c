/* Socket reads for libevent 2.1 without its 4 KiB cap.
 *
 * libevent 2.1's evbuffer_read reads at most 4,096 bytes per call
 * (EVBUFFER_MAX_READ; 2.2 made it settable), and a bufferevent reads once
 * per readable event. A 1.5 MB OTLP request then cost ~370 rounds of
 * epoll_wait + ioctl(FIONREAD) + readv: at full ingest ~150,000 system
 * calls a second on the HTTP threads. This file defines evbuffer_read with
 * the same contract over libevent's public API (reserve, readv, commit),
 * sized by what the socket holds, up to the caller's limit (the
 * bufferevent's max single read, which http.c raises). libevent calls it
 * through its PLT, so this definition takes the place of the library's
 * (docs/design.md, "HTTP reads"). */
#include "net/http.h"
#include <errno.h>
#include <string.h>
#include <event2/buffer.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

/* Reads without a caller's limit stop here, as libevent's own would at 4 KiB. */
#define DEFAULT_READ 16384
#define MAX_VECS 4

int evbuffer_read(struct evbuffer *buf, evutil_socket_t fd, int howmuch) {
  int avail = 0;
  /* The reservation is sized by what is there: an idle keep-alive
   * connection must not pin a large empty chain. */
  if (ioctl(fd, FIONREAD, &avail) < 0 || avail <= 0) avail = DEFAULT_READ;
  if (howmuch < 0) howmuch = DEFAULT_READ;
  if (howmuch > avail) howmuch = avail;
  size_t before = evbuffer_get_length(buf);
  struct evbuffer_iovec v[MAX_VECS];
  int n = evbuffer_reserve_space(buf, howmuch, v, MAX_VECS);
  if (n <= 0) return -1;
  struct iovec iov[MAX_VECS];
  size_t left = (size_t)howmuch;
  int used = 0;
  for (; used < n && left; used++) {
    iov[used].iov_base = v[used].iov_base;
    iov[used].iov_len = v[used].iov_len < left ? v[used].iov_len : left;
    left -= iov[used].iov_len;
  }
  ssize_t got;
  do got = readv(fd, iov, used);
  while (got < 0 && errno == EINTR);
  if (got <= 0) {
    int e = errno;
    evbuffer_commit_space(buf, v, 0);
    errno = e;
    return (int)got;
  }
  /* Commit exactly what arrived, vector by vector. */
  size_t rest = (size_t)got;
  int k = 0;
  for (; k < used && rest; k++) {
    v[k].iov_len = iov[k].iov_len < rest ? iov[k].iov_len : rest;
    rest -= v[k].iov_len;
  }
  if (evbuffer_commit_space(buf, v, k) != 0) return -1;
  /* Bytes read into an empty buffer start a request (the first on a new
   * connection among them): HTTP/2's preface there means an OTLP/gRPC
   * exporter, which libevent only answers with a 400. */
  static const char preface[] = "PRI * HTTP/2.0\r\n";
  char head[sizeof preface - 1];
  if (before == 0 && got >= (ssize_t)sizeof head && evbuffer_copyout(buf, head, sizeof head) == (ssize_t)sizeof head &&
      memcmp(head, preface, sizeof head) == 0)
    lt__http_h2_preface_seen();
  return (int)got;
}
