/* Unit tests for net/evread.c, through a real libevent bufferevent on a
 * socket pair: a readable event takes what the socket holds (not 4 KiB),
 * within the bufferevent's limit; bytes arrive intact and in order; end of
 * stream is reported as before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  size_t first;      /* bytes in the input at the first read callback */
  size_t calls;
  bool eof;
  struct evbuffer *all;
} seen_t;

static void on_read(struct bufferevent *bev, void *arg) {
  seen_t *s = arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  if (s->calls++ == 0) s->first = evbuffer_get_length(in);
  evbuffer_add_buffer(s->all, in);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  seen_t *s = arg;
  if (what & BEV_EVENT_EOF) s->eof = true;
}

static void fill(unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 131 + (i >> 9));
}

/* Writes n bytes into one end, then runs a bufferevent on the other with
 * the given single-read limit until the writer's end is closed. */
static void run(size_t n, ev_ssize_t max_read, seen_t *s, unsigned char *data) {
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  int big = 4 << 20;
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  fill(data, n);
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(fds[0], data + off, n - off);
    assert_true(w > 0);
    off += (size_t)w;
  }
  close(fds[0]);
  struct event_base *base = event_base_new();
  struct bufferevent *bev = bufferevent_socket_new(base, fds[1], BEV_OPT_CLOSE_ON_FREE);
  assert_non_null(bev);
  assert_int_equal(bufferevent_set_max_single_read(bev, (size_t)max_read), 0);
  memset(s, 0, sizeof *s);
  s->all = evbuffer_new();
  bufferevent_setcb(bev, on_read, NULL, on_event, s);
  bufferevent_enable(bev, EV_READ);
  while (!s->eof) assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
  bufferevent_free(bev);
  event_base_free(base);
}

static void one_event_reads_what_the_socket_holds(void **state) {
  size_t n = 200000;
  unsigned char *data = malloc(n);
  seen_t s;
  run(n, 256 << 10, &s, data);
  /* libevent 2.1's own read stops at 4,096 bytes. */
  assert_true(s.first > 100000);
  assert_true(s.calls <= 3);
  assert_int_equal(evbuffer_get_length(s.all), n);
  assert_memory_equal(evbuffer_pullup(s.all, -1), data, n);
  evbuffer_free(s.all);
  free(data);
}

static void the_bufferevents_limit_holds(void **state) {
  size_t n = 50000;
  unsigned char *data = malloc(n);
  seen_t s;
  run(n, 1000, &s, data);
  assert_int_equal(s.first, 1000);
  assert_true(s.calls >= 50);
  assert_int_equal(evbuffer_get_length(s.all), n);
  assert_memory_equal(evbuffer_pullup(s.all, -1), data, n);
  evbuffer_free(s.all);
  free(data);
}

static void end_of_stream_after_a_few_bytes(void **state) {
  unsigned char data[10];
  seen_t s;
  run(sizeof data, 256 << 10, &s, data);
  assert_true(s.eof);
  assert_int_equal(s.calls, 1);
  assert_int_equal(evbuffer_get_length(s.all), sizeof data);
  assert_memory_equal(evbuffer_pullup(s.all, -1), data, sizeof data);
  evbuffer_free(s.all);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(one_event_reads_what_the_socket_holds),
    cmocka_unit_test(the_bufferevents_limit_holds),
    cmocka_unit_test(end_of_stream_after_a_few_bytes),
  };
  return cmocka_run_group_tests_name("evread", tests, NULL, NULL);
}
