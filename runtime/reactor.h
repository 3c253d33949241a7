// reactor.h: the C++ face of a backend plugin. The only code that sees reactor_abi.h's C
// types is this class and the loading of a plugin file (plugin_file.cc); outside the runtime,
// only the plugins and the runtime's own tests may depend on //runtime:reactor_abi or
// //runtime:reactor (Bazel visibility), and the loop hands its Reactor out only through
// runtime/internal/loop_internals.h.
//
// A Plugin is one loaded shared object (dlopen handle + validated table); a Reactor is one
// instance of it, owned by one event loop. The loop submits operations and collects their
// completions; see reactor_abi.h for the contract every backend keeps.
//
//   PluginLoader loader = PluginLoader::Default();
//   absl::StatusOr<std::unique_ptr<Reactor>> reactor = loader.CreateReactor("epoll");
//   (*reactor)->submit({.user_data = 7, .opcode = IoOpcode::kRecv, .fd = fd, ...});
//   Completion done[64];
//   absl::StatusOr<int> n = (*reactor)->wait(done, /*timeout_ns=*/-1);
//
// Threads: a Reactor belongs to its loop's thread; wake() alone may be called from any thread.
// Ownership: a Reactor keeps its Plugin (and so the shared object) loaded while it lives.
#ifndef BRRR_RUNTIME_REACTOR_H_
#define BRRR_RUNTIME_REACTOR_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct brrr_completion;
struct brrr_op;
struct brrr_reactor;
struct brrr_reactor_counters;
struct brrr_reactor_plugin;

namespace brrr {

enum class IoOpcode : uint32_t {
  kAccept = 1,
  kRecv = 2,
  kSend = 3,
  kConnect = 4,
  kPollReadable = 5,
  kPollWritable = 6,
  kSendMsg = 7,  // buf: a msghdr naming the data (msg_iov); len: 0. See reactor_abi.h.
};

// Mirrors reactor_abi.h's flag values (checked by static_assert in reactor.cc).
inline constexpr uint32_t kOpMultishot = 1u << 0;
inline constexpr uint32_t kOpBufferSelect = 1u << 1;

inline constexpr uint64_t kCapMultishot = 1u << 0;
inline constexpr uint64_t kCapProvidedBuffers = 1u << 1;
inline constexpr uint64_t kCapNativeOps = 1u << 2;
inline constexpr uint64_t kCapSendMsg = 1u << 3;

// The most buffers a pool lent to a backend may have, on every backend.
inline constexpr uint32_t kMaxProvidedBuffers = 32768;

struct IoOperation {
  uint64_t user_data = 0;
  IoOpcode opcode = IoOpcode::kPollReadable;
  uint32_t flags = 0;
  int fd = -1;
  uint32_t len = 0;
  void* buf = nullptr;  // borrowed until the final completion
};

// Layout-identical to reactor_abi.h's brrr_completion (checked by static_assert in
// reactor.cc), so that a backend writes its completions straight into the caller's array.
struct Completion {
  uint64_t user_data = 0;
  int32_t result = 0;  // >= 0 success, -errno failure
  uint32_t flags = 0;
  uint32_t buffer_id = 0;
  uint32_t reserved = 0;  // the ABI's; backends write 0

  bool more() const { return flags & 1u; }        // not the operation's final completion
  bool has_buffer() const { return flags & 2u; }  // buffer_id names a provided buffer
};

struct ReactorCounters {
  uint64_t waits = 0;
  uint64_t syscalls = 0;
  uint64_t submitted = 0;
  uint64_t completed = 0;
  uint64_t recv_bundles = 0;  // receives that filled several provided buffers (io_uring bundles)
};

// One loaded plugin shared object.
class Plugin {
 public:
  // Takes ownership of the dlopen handle. `table` must have been validated by the loader.
  Plugin(void* dl_handle, const brrr_reactor_plugin* table, std::string path);
  ~Plugin();
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  const std::string& name() const { return name_; }
  const std::string& description() const { return description_; }
  const std::string& path() const { return path_; }
  uint64_t capabilities() const { return capabilities_; }  // the table's, read once
  int max_fd() const;  // -1: no limit
  const brrr_reactor_plugin& table() const { return *table_; }

 private:
  void* dl_handle_;
  const brrr_reactor_plugin* table_;
  uint64_t capabilities_;
  std::string path_;
  std::string name_;
  std::string description_;
};

struct ReactorConfig {
  // Operations queued between two waits before the backend hands them over (io_uring: the
  // SQ's entries, its CQ four times as many). 1024 holds a turn of a loop with 1,000
  // connections (level with 4096 there and pipelined: bench/JOURNAL.md, twenty-ninth run).
  // Each ring pins about 132 KiB against RLIMIT_MEMLOCK (8 MiB on Debian, for all of a
  // user's rings): with its receive buffer ring, 48 loops fit, where 4096 entries let 16.
  uint32_t queue_depth = 1024;
  // One thread drives the reactor for its whole life, the one that first waits on it
  // (creation and destruction may happen elsewhere): lets the backend tie its kernel object
  // to that thread (BRRR_REACTOR_ONE_THREAD; io_uring runs its completion work in batches).
  bool one_thread = false;
};

class Reactor {
 public:
  // Starts an instance of `plugin`. Fails with the plugin's own reason (for example why the
  // kernel refused io_uring), prefixed with the backend's name and file.
  static absl::StatusOr<std::unique_ptr<Reactor>> Create(std::shared_ptr<const Plugin> plugin,
                                                         const ReactorConfig& config = {});
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;
  // Takes over other's instance (other is left empty: destroying it does nothing), so that an
  // owner can hold the Reactor inside itself, on its own hot memory (EventLoop does).
  Reactor(Reactor&& other) noexcept;
  Reactor& operator=(Reactor&&) = delete;

  const Plugin& plugin() const { return *plugin_; }
  const std::string& name() const { return plugin_->name(); }
  bool has(uint64_t capability) const { return (plugin_->capabilities() & capability) != 0; }

  // Returns 0 or -errno (see reactor_abi.h: -EBUSY, -EINVAL, -ERANGE, -ENOMEM). An int, not a
  // Status: this is the per-message hot path; callers build a Status when it fails.
  int submit(const IoOperation& op);
  int cancel(int fd, uint64_t user_data);
  int release_fd(int fd);

  // Whether the backend can send at once without an operation (try_send). Every backend here
  // can: the readiness ones whenever the socket has room, io_uring when its loop is quiet.
  bool can_try_send() const { return calls_.try_send != nullptr; }
  // Sends up to `len` bytes now, with no operation and no completion: the bytes sent (> 0),
  // -EAGAIN when they should go as a kSend instead (the socket takes nothing now, or the
  // backend batches sends under load), -EBUSY when a write-side operation is in flight on fd,
  // or the send's -errno. Only where can_try_send().
  int try_send(int fd, const void* buf, uint32_t len) { return calls_.try_send(instance_, fd, buf, len); }

  // Waits up to timeout_ns (-1: until woken) and fills `out`: the backend writes into it
  // directly, with no copy on the way. Returns how many completions; Internal if the backend
  // failed, or claims more completions than `out` holds (a plugin bug: nothing past it is read).
  absl::StatusOr<int> wait(std::span<Completion> out, int64_t timeout_ns);

  // Thread-safe.
  void wake();

  absl::Status provide_buffers(void* base, uint32_t size, uint32_t count);
  void recycle_buffer(uint32_t buffer_id);

  ReactorCounters counters() const;

 private:
  Reactor(std::shared_ptr<const Plugin> plugin, brrr_reactor* instance);

  // The table's entries a busy loop calls per message or per wait, copied here: read from the
  // plugin's table they would cost two more pages of memory per call (the Plugin, then the
  // plugin's own data) on a machine where each system call empties the TLB (hot_path.h).
  struct HotCalls {
    int (*submit)(brrr_reactor*, const brrr_op*);
    int (*wait)(brrr_reactor*, brrr_completion*, int, int64_t);
    void (*recycle_buffer)(brrr_reactor*, uint32_t);
    void (*counters)(const brrr_reactor*, brrr_reactor_counters*);
    int (*try_send)(brrr_reactor*, int, const void*, uint32_t);  // or null
  };

  std::shared_ptr<const Plugin> plugin_;
  brrr_reactor* instance_;
  HotCalls calls_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_REACTOR_H_
