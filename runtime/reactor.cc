#include "runtime/reactor.h"

#include <dlfcn.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/hot_path.h"
#include "runtime/reactor_abi.h"

namespace brrr {

static_assert(static_cast<uint32_t>(IoOpcode::kAccept) == BRRR_OP_ACCEPT);
static_assert(static_cast<uint32_t>(IoOpcode::kRecv) == BRRR_OP_RECV);
static_assert(static_cast<uint32_t>(IoOpcode::kSend) == BRRR_OP_SEND);
static_assert(static_cast<uint32_t>(IoOpcode::kConnect) == BRRR_OP_CONNECT);
static_assert(static_cast<uint32_t>(IoOpcode::kPollReadable) == BRRR_OP_POLL_READABLE);
static_assert(static_cast<uint32_t>(IoOpcode::kPollWritable) == BRRR_OP_POLL_WRITABLE);
static_assert(kOpMultishot == BRRR_OP_MULTISHOT);
static_assert(kOpBufferSelect == BRRR_OP_BUFFER_SELECT);
static_assert(kCapMultishot == BRRR_CAP_MULTISHOT);
static_assert(kCapProvidedBuffers == BRRR_CAP_PROVIDED_BUFFERS);
static_assert(kCapNativeOps == BRRR_CAP_NATIVE_OPS);
static_assert(static_cast<uint32_t>(IoOpcode::kSendMsg) == BRRR_OP_SENDMSG);
static_assert(kCapSendMsg == BRRR_CAP_SENDMSG);
static_assert(BRRR_COMPLETION_MORE == 1u && BRRR_COMPLETION_BUFFER == 2u);

// Completion is brrr_completion with member functions: wait() hands the caller's array to the
// backend as is. Both are standard-layout structs of the same members at the same offsets;
// the backend writes them from C, across dlopen, where no C++ aliasing assumption reaches.
static_assert(std::is_standard_layout_v<Completion> && std::is_trivially_copyable_v<Completion>);
static_assert(sizeof(Completion) == sizeof(brrr_completion));
static_assert(alignof(Completion) == alignof(brrr_completion));
static_assert(offsetof(Completion, user_data) == offsetof(brrr_completion, user_data));
static_assert(offsetof(Completion, result) == offsetof(brrr_completion, result));
static_assert(offsetof(Completion, flags) == offsetof(brrr_completion, flags));
static_assert(offsetof(Completion, buffer_id) == offsetof(brrr_completion, buffer_id));
static_assert(offsetof(Completion, reserved) == offsetof(brrr_completion, reserved));
static_assert(kMaxProvidedBuffers == BRRR_MAX_PROVIDED_BUFFERS);

Plugin::Plugin(void* dl_handle, const brrr_reactor_plugin* table, std::string path)
    : dl_handle_(dl_handle),
      table_(table),
      capabilities_(table->capabilities),
      path_(std::move(path)),
      name_(table->name != nullptr ? table->name : ""),
      description_(table->description != nullptr ? table->description : "") {}

Plugin::~Plugin() {
  if (dl_handle_ != nullptr) dlclose(dl_handle_);
}

int Plugin::max_fd() const { return table_->max_fd; }

absl::StatusOr<std::unique_ptr<Reactor>> Reactor::Create(std::shared_ptr<const Plugin> plugin,
                                                         const ReactorConfig& config) {
  brrr_reactor_config c{};
  c.struct_size = sizeof c;
  c.queue_depth = config.queue_depth;
  if (config.one_thread) c.flags |= BRRR_REACTOR_ONE_THREAD;
  brrr_reactor* instance = nullptr;
  char reason[512] = {0};
  int rc = plugin->table().create(&c, &instance, reason, sizeof reason);
  if (rc != 0 || instance == nullptr) {
    std::string why = reason[0] != '\0' ? reason : std::strerror(rc < 0 ? -rc : EINVAL);
    return absl::UnavailableError(absl::StrCat("backend \"", plugin->name(), "\" (",
                                               plugin->path(), ") cannot start here: ", why));
  }
  return std::unique_ptr<Reactor>(new Reactor(std::move(plugin), instance));
}

Reactor::Reactor(std::shared_ptr<const Plugin> plugin, brrr_reactor* instance)
    : plugin_(std::move(plugin)),
      instance_(instance),
      calls_{.submit = plugin_->table().submit,
             .wait = plugin_->table().wait,
             .recycle_buffer = plugin_->table().recycle_buffer,
             .counters = plugin_->table().counters,
             .try_send = plugin_->table().try_send} {}

Reactor::Reactor(Reactor&& other) noexcept
    : plugin_(std::move(other.plugin_)), instance_(std::exchange(other.instance_, nullptr)), calls_(other.calls_) {}

Reactor::~Reactor() {
  if (instance_ != nullptr) plugin_->table().destroy(instance_);
}

BRRR_HOT_PATH int Reactor::submit(const IoOperation& op) {
  brrr_op c;
  c.user_data = op.user_data;
  c.opcode = static_cast<uint32_t>(op.opcode);
  c.flags = op.flags;
  c.fd = op.fd;
  c.len = op.len;
  c.buf = op.buf;
  return calls_.submit(instance_, &c);
}

int Reactor::cancel(int fd, uint64_t user_data) {
  return plugin_->table().cancel(instance_, fd, user_data);
}

int Reactor::release_fd(int fd) { return plugin_->table().release_fd(instance_, fd); }

BRRR_HOT_PATH absl::StatusOr<int> Reactor::wait(std::span<Completion> out, int64_t timeout_ns) {
  int n = calls_.wait(instance_, reinterpret_cast<brrr_completion*>(out.data()), static_cast<int>(out.size()),
                      timeout_ns);
  if (n < 0) [[unlikely]] {
    return absl::InternalError(absl::StrCat("backend \"", name(), "\": wait failed: ", std::strerror(-n)));
  }
  if (n > static_cast<int>(out.size())) [[unlikely]] {
    // Read no further than the room: what lies past it is not completions.
    return absl::InternalError(absl::StrCat("backend \"", name(), "\": wait returned ", n, " completions where ",
                                            out.size(), " fit (a bug in the plugin)"));
  }
  return n;
}

void Reactor::wake() { plugin_->table().wake(instance_); }

absl::Status Reactor::provide_buffers(void* base, uint32_t size, uint32_t count) {
  if (!has(kCapProvidedBuffers)) {
    return absl::FailedPreconditionError(
        absl::StrCat("backend \"", name(), "\" does not support provided buffers"));
  }
  int rc = plugin_->table().provide_buffers(instance_, base, size, count);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("backend \"", name(), "\": provide_buffers(", count,
                                            " x ", size, " bytes): ", std::strerror(-rc)));
  }
  return absl::OkStatus();
}

BRRR_HOT_PATH void Reactor::recycle_buffer(uint32_t buffer_id) {
  calls_.recycle_buffer(instance_, buffer_id);
}

BRRR_HOT_PATH ReactorCounters Reactor::counters() const {
  brrr_reactor_counters c{};
  calls_.counters(instance_, &c);
  return ReactorCounters{c.waits, c.syscalls, c.submitted, c.completed, c.recv_bundles};
}

}  // namespace brrr
