/* A VFS shim over the default one that merges SQLite's small writes into
 * large ones (docs/storage.md, "Write coalescing").
 *
 * SQLite appends a commit to the WAL one frame at a time, as two writes
 * (the 24-byte frame header, then the page), and a checkpoint copies
 * frames into the database one page per write. At full ingest that was
 * ~117,000 pwrite calls a second, each touching one or two page-cache
 * pages. Here the writes of a contiguous run collect in a buffer that goes
 * to the file in one call:
 *
 *  - WAL: until the commit frame's page is written (its header carries the
 *    database size, which only a commit frame does). The commit is thus in
 *    the file before SQLite publishes it in the WAL index, and an error
 *    writing it fails the commit, as before. Uncommitted frames are read by
 *    no other connection; this one's own reads flush first.
 *  - Database file: only between SQLITE_FCNTL_CKPT_START and _CKPT_DONE,
 *    the checkpoint's copy loop. SQLite records the copied frames as
 *    backfilled only after _CKPT_DONE, so readers never look for a page
 *    that is still in the buffer.
 *
 * Every other operation on a file (read, sync, size, truncate, fetch,
 * close) flushes it first, so SQLite sees the file it wrote. */
#include "store/sqlite_internal.h"
#include "core/log.h"
#include "core/mem.h"
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define VFS_NAME "lanterna"
/* Bytes merged into one write: 15 WAL frames of 4 KiB pages. The unix
 * VFS writes at most 128 KiB - 1 in one call (a longer write comes back
 * short, as a full disk); past a few frames the call's cost is noise. */
#define RUN_BYTES (64u << 10)
#define FRAME_HDR 24

enum { K_OTHER, K_MAIN, K_WAL };

typedef struct vfile {
  sqlite3_file base;  /* pMethods: ours */
  sqlite3_file *real; /* the default VFS's file, right after this struct */
  int kind;
  bool in_ckpt;       /* K_MAIN: between CKPT_START and CKPT_DONE */
  bool commit_next;   /* K_WAL: the next write is the commit frame's page */
  bool off;           /* coalescing given up for this file */
  char *buf;
  size_t len;
  sqlite3_int64 at;   /* file offset of buf[0] */
  sqlite3_int64 head; /* K_WAL: where the next appended frame goes; 0: not known */
  struct vfile *prev, *next; /* K_WAL: the list of open WAL files */
} vfile_t;

static sqlite3_vfs vfs;
static sqlite3_vfs *real_vfs;
static sqlite3_io_methods methods;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool registered;
static _Atomic uint64_t n_writes, n_flushes, n_late;
/* The WAL file this thread buffered into and has not flushed since: the
 * WAL index's barrier (the moment a commit is published) must never find
 * it holding data. The barrier looks it up among the open WAL files first,
 * so a file closed since, by another thread, is never touched. */
static _Thread_local vfile_t *tls_wal;
static pthread_mutex_t wal_mu = PTHREAD_MUTEX_INITIALIZER;
static vfile_t *wal_files;
/* Set when this thread takes the WAL write lock: the transaction's first
 * frame is an append wherever it lands (another process may have
 * appended since this file last wrote). */
static _Thread_local bool tls_txn_start;

static sqlite3_file *real_of(sqlite3_file *f) { return ((vfile_t *)f)->real; }

static int flush(vfile_t *f) {
  if (f->len == 0) return SQLITE_OK;
  int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
  f->len = 0;
  if (tls_wal == f) tls_wal = NULL;
  atomic_fetch_add_explicit(&n_flushes, 1, memory_order_relaxed);
  return rc;
}

static int x_close(sqlite3_file *file) {
  vfile_t *f = (vfile_t *)file;
  int rc = flush(f);
  if (f->kind == K_WAL) {
    pthread_mutex_lock(&wal_mu);
    if (f->prev) f->prev->next = f->next;
    else wal_files = f->next;
    if (f->next) f->next->prev = f->prev;
    pthread_mutex_unlock(&wal_mu);
  }
  int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  lt_free(f->buf);
  f->buf = NULL;
  return rc != SQLITE_OK ? rc : rc2;
}

static int x_read(sqlite3_file *file, void *p, int n, sqlite3_int64 at) {
  int rc = flush((vfile_t *)file);
  return rc != SQLITE_OK ? rc : real_of(file)->pMethods->xRead(real_of(file), p, n, at);
}

/* Bytes 4-7 of a WAL frame header: the database size in pages after a
 * commit, zero in every other frame. */
static bool is_commit_header(const void *p, int n) {
  const unsigned char *h = p;
  return n == FRAME_HDR && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int x_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 at) {
  vfile_t *f = (vfile_t *)file;
  /* WAL: only appends at the write head (or a new log's header at 0)
   * merge; SQLite rewriting an earlier frame of the transaction (a page
   * it spilled, or the checksums at its commit) writes through. */
  bool append = f->kind == K_WAL && (at == f->head || at == 0 || f->head == 0 || tls_txn_start);
  if (f->kind == K_WAL) tls_txn_start = false;
  bool merge = !f->off && (f->kind == K_MAIN ? f->in_ckpt : append);
  int rc = SQLITE_OK;
  if (f->len && (!merge || at != f->at + (sqlite3_int64)f->len || f->len + (size_t)n > RUN_BYTES)) rc = flush(f);
  if (rc != SQLITE_OK) return rc;
  if (append) f->head = at + n;
  if (merge && !f->buf && !(f->buf = lt_malloc(RUN_BYTES))) merge = false;
  if (!merge || (size_t)n > RUN_BYTES) return f->real->pMethods->xWrite(f->real, p, n, at);
  atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
  if (f->len == 0) f->at = at;
  memcpy(f->buf + f->len, p, (size_t)n);
  f->len += (size_t)n;
  if (f->kind != K_WAL) return SQLITE_OK;
  tls_wal = f;
  /* The page after a commit frame's header ends the commit. (A run that
   * filled up between the two went out already: the flag stays.) */
  if (f->commit_next) {
    f->commit_next = false;
    return flush(f);
  }
  if (is_commit_header(p, n)) f->commit_next = true;
  return SQLITE_OK;
}

static int x_truncate(sqlite3_file *file, sqlite3_int64 size) {
  vfile_t *f = (vfile_t *)file;
  int rc = flush(f);
  f->head = 0;
  return rc != SQLITE_OK ? rc : real_of(file)->pMethods->xTruncate(real_of(file), size);
}

static int x_sync(sqlite3_file *file, int flags) {
  int rc = flush((vfile_t *)file);
  return rc != SQLITE_OK ? rc : real_of(file)->pMethods->xSync(real_of(file), flags);
}

static int x_file_size(sqlite3_file *file, sqlite3_int64 *size) {
  int rc = flush((vfile_t *)file);
  return rc != SQLITE_OK ? rc : real_of(file)->pMethods->xFileSize(real_of(file), size);
}

static int x_lock(sqlite3_file *file, int level) { return real_of(file)->pMethods->xLock(real_of(file), level); }

static int x_unlock(sqlite3_file *file, int level) {
  int rc = flush((vfile_t *)file);
  int rc2 = real_of(file)->pMethods->xUnlock(real_of(file), level);
  return rc != SQLITE_OK ? rc : rc2;
}

static int x_check_reserved(sqlite3_file *file, int *out) {
  return real_of(file)->pMethods->xCheckReservedLock(real_of(file), out);
}

static int x_file_control(sqlite3_file *file, int op, void *arg) {
  vfile_t *f = (vfile_t *)file;
  if (f->kind == K_MAIN && op == SQLITE_FCNTL_CKPT_START) f->in_ckpt = true;
  int rc = SQLITE_OK;
  if (op == SQLITE_FCNTL_CKPT_DONE) {
    f->in_ckpt = false;
    rc = flush(f);
  } else if (op != SQLITE_FCNTL_CKPT_START && op != SQLITE_FCNTL_SIZE_HINT && op != SQLITE_FCNTL_SYNC_OMITTED) {
    rc = flush(f); /* an unknown control may look at the file */
  }
  int rc2 = f->real->pMethods->xFileControl(f->real, op, arg);
  return rc != SQLITE_OK ? rc : rc2;
}

static int x_sector_size(sqlite3_file *file) { return real_of(file)->pMethods->xSectorSize(real_of(file)); }

static int x_device_characteristics(sqlite3_file *file) {
  return real_of(file)->pMethods->xDeviceCharacteristics(real_of(file));
}

static int x_shm_map(sqlite3_file *file, int pg, int pgsz, int extend, void volatile **pp) {
  return real_of(file)->pMethods->xShmMap(real_of(file), pg, pgsz, extend, pp);
}

/* Lock slot 0 of the WAL index is SQLite's WAL write lock. */
static int x_shm_lock(sqlite3_file *file, int offset, int n, int flags) {
  int rc = real_of(file)->pMethods->xShmLock(real_of(file), offset, n, flags);
  if (rc == SQLITE_OK && offset == 0 && flags == (SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE)) tls_txn_start = true;
  return rc;
}

/* The WAL index barrier: a commit is about to become visible. Its frames
 * went out with the commit frame; finding any still here means SQLite
 * wrote in a pattern this file does not know, so the data goes out now
 * (a failure cannot be reported from here) and that file stops merging. */
static void x_shm_barrier(sqlite3_file *file) {
  vfile_t *w = tls_wal;
  if (w) {
    pthread_mutex_lock(&wal_mu);
    vfile_t *o = wal_files;
    while (o && o != w) o = o->next;
    pthread_mutex_unlock(&wal_mu);
    if (!o) w = tls_wal = NULL;
  }
  if (w && w->len) {
    atomic_fetch_add_explicit(&n_late, 1, memory_order_relaxed);
    if (!w->off) lt_warn("sqlite: a WAL write pattern the write merger does not know; merging off for this file");
    w->off = true;
    if (flush(w) != SQLITE_OK) lt_error("sqlite: writing WAL frames at the index barrier failed");
  }
  real_of(file)->pMethods->xShmBarrier(real_of(file));
}

static int x_shm_unmap(sqlite3_file *file, int del) {
  return real_of(file)->pMethods->xShmUnmap(real_of(file), del);
}

static int x_fetch(sqlite3_file *file, sqlite3_int64 at, int n, void **pp) {
  int rc = flush((vfile_t *)file);
  return rc != SQLITE_OK ? rc : real_of(file)->pMethods->xFetch(real_of(file), at, n, pp);
}

static int x_unfetch(sqlite3_file *file, sqlite3_int64 at, void *p) {
  return real_of(file)->pMethods->xUnfetch(real_of(file), at, p);
}

static size_t real_offset(void) { return (sizeof(vfile_t) + 15) & ~(size_t)15; }

static int x_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags) {
  (void)v;
  vfile_t *f = (vfile_t *)file;
  memset(f, 0, sizeof *f);
  f->real = (sqlite3_file *)((char *)f + real_offset());
  f->kind = flags & SQLITE_OPEN_WAL ? K_WAL : flags & SQLITE_OPEN_MAIN_DB ? K_MAIN : K_OTHER;
  int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
  /* SQLite closes a file whose methods are set even when the open failed. */
  f->base.pMethods = f->real->pMethods ? &methods : NULL;
  if (f->base.pMethods && f->kind == K_WAL) {
    pthread_mutex_lock(&wal_mu);
    f->next = wal_files;
    if (wal_files) wal_files->prev = f;
    wal_files = f;
    pthread_mutex_unlock(&wal_mu);
  }
  /* The shim relies on version 3 methods (shared memory, fetch). */
  if (rc == SQLITE_OK && f->real->pMethods->iVersion < 3) f->off = true;
  return rc;
}

static int x_delete(sqlite3_vfs *v, const char *name, int sync) {
  (void)v;
  return real_vfs->xDelete(real_vfs, name, sync);
}

static int x_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  (void)v;
  return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int x_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out) {
  (void)v;
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *x_dlopen(sqlite3_vfs *v, const char *name) {
  (void)v;
  return real_vfs->xDlOpen(real_vfs, name);
}

static void x_dlerror(sqlite3_vfs *v, int n, char *msg) {
  (void)v;
  real_vfs->xDlError(real_vfs, n, msg);
}

static void (*x_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void) {
  (void)v;
  return real_vfs->xDlSym(real_vfs, h, sym);
}

static void x_dlclose(sqlite3_vfs *v, void *h) {
  (void)v;
  real_vfs->xDlClose(real_vfs, h);
}

static int x_randomness(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xRandomness(real_vfs, n, out);
}

static int x_sleep(sqlite3_vfs *v, int us) {
  (void)v;
  return real_vfs->xSleep(real_vfs, us);
}

static int x_current_time(sqlite3_vfs *v, double *out) {
  (void)v;
  return real_vfs->xCurrentTime(real_vfs, out);
}

static int x_get_last_error(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int x_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out) {
  (void)v;
  return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void do_register(void) {
  real_vfs = sqlite3_vfs_find(NULL);
  /* Version 2 at least (the 64-bit clock); the io methods are checked per file. */
  if (!real_vfs || real_vfs->iVersion < 2) {
    lt_warn("sqlite: the default VFS is too old for the write merger; writing as SQLite does");
    return;
  }
  methods = (sqlite3_io_methods){
    .iVersion = 3,
    .xClose = x_close,
    .xRead = x_read,
    .xWrite = x_write,
    .xTruncate = x_truncate,
    .xSync = x_sync,
    .xFileSize = x_file_size,
    .xLock = x_lock,
    .xUnlock = x_unlock,
    .xCheckReservedLock = x_check_reserved,
    .xFileControl = x_file_control,
    .xSectorSize = x_sector_size,
    .xDeviceCharacteristics = x_device_characteristics,
    .xShmMap = x_shm_map,
    .xShmLock = x_shm_lock,
    .xShmBarrier = x_shm_barrier,
    .xShmUnmap = x_shm_unmap,
    .xFetch = x_fetch,
    .xUnfetch = x_unfetch,
  };
  vfs = (sqlite3_vfs){
    .iVersion = 2,
    .szOsFile = (int)(real_offset() + (size_t)real_vfs->szOsFile),
    .mxPathname = real_vfs->mxPathname,
    .zName = VFS_NAME,
    .xOpen = x_open,
    .xDelete = x_delete,
    .xAccess = x_access,
    .xFullPathname = x_full_pathname,
    .xDlOpen = x_dlopen,
    .xDlError = x_dlerror,
    .xDlSym = x_dlsym,
    .xDlClose = x_dlclose,
    .xRandomness = x_randomness,
    .xSleep = x_sleep,
    .xCurrentTime = x_current_time,
    .xGetLastError = x_get_last_error,
    .xCurrentTimeInt64 = x_current_time_int64,
  };
  registered = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
  if (!registered) lt_warn("sqlite: could not register the write merger; writing as SQLite does");
}

const char *lt__sq_vfs_name(void) {
  pthread_once(&once, do_register);
  return registered ? VFS_NAME : NULL;
}

void lt__sq_vfs_stats(lt__sq_vfs_stats_t *out) {
  out->writes = atomic_load(&n_writes);
  out->flushes = atomic_load(&n_flushes);
  out->late = atomic_load(&n_late);
}
