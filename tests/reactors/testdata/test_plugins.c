/*
 * test_plugins.c: deliberately broken backend plugins for the loader's error cases. One
 * source, built several times with a different -D each (see tests/reactors/BUILD):
 *   WRONG_ABI      exports a table that claims a future ABI version
 *   NO_ENTRY       exports no brrr_reactor_entry at all
 *   REFUSES        a well-formed plugin whose create() fails, as a kernel that refuses
 *                  io_uring would make it fail
 *   SHORT_TABLE    a table whose struct_size is smaller than the runtime's
 *   CRASHES        a well-formed plugin whose create() dies of SIGBUS, as one mapped past the
 *                  end of its file would
 *   HANGS          a well-formed plugin whose create() never returns
 *   EXITS          a well-formed plugin whose create() says goodbye and calls exit(0)
 *   OVERFLOWS      a plugin that starts, and whose wait() reports one completion more than
 *                  the room it was given (and writes none)
 *   NO_RELEASE_FD  a table that leaves release_fd, a required function, empty (NULL)
 * PLUGIN_NAME is the name the table declares; the file must be named after it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/reactor_abi.h"

#if defined(OVERFLOWS)
static int start(const brrr_reactor_config* config, brrr_reactor** out, char* err, size_t err_size) {
  static int instance;
  (void)config;
  (void)err;
  (void)err_size;
  *out = (brrr_reactor*)&instance;
  return 0;
}
#elif !defined(CRASHES) && !defined(HANGS) && !defined(EXITS)
static int refuse(const brrr_reactor_config* config, brrr_reactor** out, char* err, size_t err_size) {
  (void)config;
  (void)out;
  snprintf(err, err_size, "test_setup: Operation not permitted (refused by the test's simulated kernel policy)");
  return -EPERM;
}
#endif
#if defined(CRASHES)
static int crash(const brrr_reactor_config* config, brrr_reactor** out, char* err, size_t err_size) {
  (void)config;
  (void)out;
  (void)err;
  (void)err_size;
  raise(SIGBUS);
  return -EFAULT;
}
#elif defined(EXITS)
static int leave(const brrr_reactor_config* config, brrr_reactor** out, char* err, size_t err_size) {
  (void)config;
  (void)out;
  (void)err;
  (void)err_size;
  printf("test plugin: exiting from create()\n");
  exit(0);
}
#elif defined(HANGS)
static int hang(const brrr_reactor_config* config, brrr_reactor** out, char* err, size_t err_size) {
  (void)config;
  (void)out;
  (void)err;
  (void)err_size;
  for (;;) pause();
  return -EINTR;
}
#endif
static void destroy(brrr_reactor* r) { (void)r; }
static int submit(brrr_reactor* r, const brrr_op* op) { (void)r; (void)op; return -ENOSYS; }
static int cancel(brrr_reactor* r, int fd, uint64_t ud) { (void)r; (void)fd; (void)ud; return -ENOENT; }
static int wait_fn(brrr_reactor* r, brrr_completion* out, int max, int64_t t) {
  (void)r; (void)out; (void)max; (void)t;
#ifdef OVERFLOWS
  return max + 1;
#else
  return 0;
#endif
}
static int wake(brrr_reactor* r) { (void)r; return 0; }
#ifndef NO_RELEASE_FD
static int release_fd(brrr_reactor* r, int fd) { (void)r; (void)fd; return 0; }
#endif
static int provide(brrr_reactor* r, void* b, uint32_t s, uint32_t c) { (void)r; (void)b; (void)s; (void)c; return -ENOTSUP; }
static void recycle(brrr_reactor* r, uint32_t id) { (void)r; (void)id; }
static void counters(const brrr_reactor* r, brrr_reactor_counters* out) { (void)r; memset(out, 0, sizeof *out); }

static const brrr_reactor_plugin kPlugin = {
#ifdef WRONG_ABI
    .abi_version = BRRR_REACTOR_ABI_VERSION + 1000,
#else
    .abi_version = BRRR_REACTOR_ABI_VERSION,
#endif
#ifdef SHORT_TABLE
    .struct_size = 16,
#else
    .struct_size = sizeof(brrr_reactor_plugin),
#endif
    .name = PLUGIN_NAME,
    .description = "a broken plugin for tests",
    .capabilities = 0,
    .max_fd = -1,
#if defined(CRASHES)
    .create = crash,
#elif defined(OVERFLOWS)
    .create = start,
#elif defined(EXITS)
    .create = leave,
#elif defined(HANGS)
    .create = hang,
#else
    .create = refuse,
#endif
    .destroy = destroy,
    .submit = submit,
    .cancel = cancel,
    .wait = wait_fn,
    .wake = wake,
#ifndef NO_RELEASE_FD
    .release_fd = release_fd,
#endif
    .provide_buffers = provide,
    .recycle_buffer = recycle,
    .counters = counters,
};

#ifdef NO_ENTRY
BRRR_REACTOR_EXPORT const brrr_reactor_plugin* not_the_entry_point(void) { return &kPlugin; }
#else
BRRR_REACTOR_EXPORT const brrr_reactor_plugin* brrr_reactor_entry(void) { return &kPlugin; }
#endif
