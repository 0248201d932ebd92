/* relay: the least any HTTP proxy can do — accept a connection, open one
 * to the upstream, and copy bytes both ways as they arrive. No parsing,
 * no logging, no buffering beyond one read. The proxy benchmark runs it
 * next to Lanterna to show what the extra hop alone costs on this
 * machine (bench/proxy_bench.py, "relay" column).
 *
 *   relay -listen 127.0.0.1:PORT -upstream 127.0.0.1:PORT [-threads N]
 *
 * Each thread has its own epoll loop and its own SO_REUSEPORT listener,
 * like Lanterna's two HTTP loops. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (64 * 1024)

typedef struct end {
  int fd;
  struct end *peer;
  char buf[BUF]; /* bytes read from this end not yet written to the peer */
  size_t off, len;
  int closed; /* read side saw EOF */
  struct end *next_dead;
} end_t;

static struct sockaddr_in listen_addr, up_addr;

static int parse_addr(const char *s, struct sockaddr_in *a) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons((unsigned short)atoi(colon + 1));
  return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void watch(int ep, end_t *e, unsigned events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = e};
  epoll_ctl(ep, op, e->fd, &ev);
}

/* Both ends are freed after the current batch of events, which may still
 * name the peer. */
static __thread end_t *dead;

static void close_pair(int ep, end_t *e) {
  end_t *p = e->peer;
  epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);
  epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
  close(e->fd);
  close(p->fd);
  e->fd = p->fd = -1;
  e->next_dead = p;
  p->next_dead = dead;
  dead = e;
}

/* Writes what `from` holds to its peer; 1 when all of it went out. */
static int flush(end_t *from) {
  while (from->off < from->len) {
    ssize_t n = send(from->peer->fd, from->buf + from->off, from->len - from->off, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    from->off += (size_t)n;
  }
  from->off = from->len = 0;
  return 1;
}

/* Reading from `e` pauses while its bytes wait for the peer to drain. */
static int pump(int ep, end_t *e) {
  for (;;) {
    int f = flush(e);
    if (f < 0) return -1;
    if (f == 0) { /* peer full: wait for it, stop reading e */
      watch(ep, e, 0, EPOLL_CTL_MOD);
      watch(ep, e->peer, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
      return 0;
    }
    if (e->closed) return -1;
    ssize_t n = recv(e->fd, e->buf, BUF, 0);
    if (n == 0) {
      e->closed = 1;
      return -1;
    }
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    e->len = (size_t)n;
  }
}

static void *loop(void *arg) {
  (void)arg;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&listen_addr, sizeof listen_addr) || listen(ls, 1024)) {
    perror("relay: listen");
    exit(1);
  }
  int ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      end_t *e = evs[i].data.ptr;
      if (e && e->fd < 0) continue; /* its pair closed earlier in this batch */
      if (!e) { /* new clients: each gets its upstream connection */
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          int u = socket(AF_INET, SOCK_STREAM, 0);
          if (u < 0 || connect(u, (struct sockaddr *)&up_addr, sizeof up_addr)) {
            close(c);
            if (u >= 0) close(u);
            continue;
          }
          if (fcntl(u, F_SETFL, O_NONBLOCK)) {
            close(c);
            close(u);
            continue;
          }
          nodelay(c);
          nodelay(u);
          end_t *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
          if (!a || !b) {
            free(a);
            free(b);
            close(c);
            close(u);
            continue;
          }
          a->fd = c, b->fd = u, a->peer = b, b->peer = a;
          watch(ep, a, EPOLLIN, EPOLL_CTL_ADD);
          watch(ep, b, EPOLLIN, EPOLL_CTL_ADD);
        }
        continue;
      }
      if (evs[i].events & EPOLLOUT) { /* e drained: its peer's bytes can go */
        end_t *p = e->peer;
        int f = flush(p);
        if (f < 0) {
          close_pair(ep, e);
          continue;
        }
        if (f == 0) continue;
        watch(ep, e, EPOLLIN, EPOLL_CTL_MOD);
        watch(ep, p, EPOLLIN, EPOLL_CTL_MOD);
        if (pump(ep, p) < 0) {
          close_pair(ep, e);
          continue;
        }
        if (!(evs[i].events & EPOLLIN)) continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        if (pump(ep, e) < 0) close_pair(ep, e);
    }
    while (dead) {
      end_t *d = dead;
      dead = d->next_dead;
      free(d);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *l = NULL, *u = NULL;
  int threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "-listen")) l = argv[i + 1];
    else if (!strcmp(argv[i], "-upstream")) u = argv[i + 1];
    else if (!strcmp(argv[i], "-threads")) threads = atoi(argv[i + 1]);
  }
  if (!l || !u || parse_addr(l, &listen_addr) || parse_addr(u, &up_addr) || threads < 1) {
    fprintf(stderr, "usage: relay -listen HOST:PORT -upstream HOST:PORT [-threads N]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  pthread_t t[64];
  if (threads > 64) threads = 64;
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, loop, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  return 0;
}
