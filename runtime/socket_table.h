// socket_table.h: every open socket of one loop, for statistics and the admin plane.
//
// Sockets register on creation and leave on close. The table keeps the read set (sockets
// with a receive or accept pending) and the write set (sockets with bytes queued to send)
// as counts that other threads read without locks, and lists each socket's details on the
// loop thread (the admin plane posts ListSockets into the loop).
//
// Threads: loop thread, except the *_size() counts (any thread).
#ifndef BRRR_RUNTIME_SOCKET_TABLE_H_
#define BRRR_RUNTIME_SOCKET_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/single_writer.h"

namespace brrr {

struct SocketInfo {
  int fd = -1;
  std::string kind;  // "listener", "connection"
  std::string local;
  std::string peer;
  int64_t age_ns = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t bytes_queued = 0;
  bool in_read_set = false;
  bool in_write_set = false;
};

// What a socket shows the table.
class SocketEntry {
 public:
  virtual SocketInfo info(int64_t now_ns) const = 0;
  // The loop is being destroyed and its backend is gone: close and free what is left of a
  // socket that was waiting for its operations to finish before closing.
  virtual void finish_close_at_shutdown() = 0;

 protected:
  ~SocketEntry() = default;

 private:
  friend class SocketTable;
  SocketEntry* prev_ = nullptr;
  SocketEntry* next_ = nullptr;
};

class SocketTable {
 public:
  void add(SocketEntry* s) {
    link(&head_, s);
    count_.add(1);
  }
  void remove(SocketEntry* s) {
    unlink(&head_, s);
    count_.store(count_.load() - 1);
  }

  std::vector<SocketInfo> list(int64_t now_ns) const {
    std::vector<SocketInfo> out;
    for (SocketEntry* s = head_; s != nullptr; s = s->next_) out.push_back(s->info(now_ns));
    return out;
  }

  // Sockets that were closed while operations were in flight; they close for good when the
  // last one finishes, or at loop shutdown.
  void add_closing(SocketEntry* s) { link(&closing_head_, s); }
  void remove_closing(SocketEntry* s) { unlink(&closing_head_, s); }
  bool has_closing() const { return closing_head_ != nullptr; }
  void finish_closing_at_shutdown() {
    while (closing_head_ != nullptr) closing_head_->finish_close_at_shutdown();
  }

  // Read-set / write-set membership changes.
  void read_set_delta(int delta) { read_set_.store(read_set_.load() + static_cast<uint64_t>(delta)); }
  void write_set_delta(int delta) { write_set_.store(write_set_.load() + static_cast<uint64_t>(delta)); }

  uint64_t size() const { return count_.load(); }
  uint64_t read_set_size() const { return read_set_.load(); }
  uint64_t write_set_size() const { return write_set_.load(); }

 private:
  static void link(SocketEntry** head, SocketEntry* s) {
    s->prev_ = nullptr;
    s->next_ = *head;
    if (*head != nullptr) (*head)->prev_ = s;
    *head = s;
  }
  static void unlink(SocketEntry** head, SocketEntry* s) {
    if (s->prev_ != nullptr) {
      s->prev_->next_ = s->next_;
    } else {
      *head = s->next_;
    }
    if (s->next_ != nullptr) s->next_->prev_ = s->prev_;
    s->prev_ = s->next_ = nullptr;
  }

  SocketEntry* head_ = nullptr;
  SocketEntry* closing_head_ = nullptr;
  SingleWriter<uint64_t> count_;
  SingleWriter<uint64_t> read_set_;
  SingleWriter<uint64_t> write_set_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_SOCKET_TABLE_H_
