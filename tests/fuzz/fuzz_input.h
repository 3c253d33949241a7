// fuzz_input.h: a fuzz input read from the front, field by field, so that each target's input
// has a layout a person can write seeds for (tests/fuzz/make_seeds.py writes them so).
//
//   FuzzInput in(data, size);
//   uint8_t selector = in.Byte();
//   uint64_t limit = in.Uint(2);            // little-endian
//   std::string_view prefix = in.Bytes(in.Byte());
//   std::string_view rest = in.Rest();
//
// Reading past the end gives zeros and empty views, so every input means something.
// Threads: a value used by one thread. Ownership: the views point into the caller's bytes.
#ifndef BRRR_TESTS_FUZZ_FUZZ_INPUT_H_
#define BRRR_TESTS_FUZZ_FUZZ_INPUT_H_

#ifndef BRRR_FUZZING
#error "tests/fuzz builds with clang and libFuzzer: bazel build --config=fuzz (see tools/fuzz.sh)"
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace brrr::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(reinterpret_cast<const char*>(data)), size_(size) {}

  uint8_t Byte() { return pos_ < size_ ? static_cast<uint8_t>(data_[pos_++]) : 0; }

  // `bytes` (at most 8) bytes as a little-endian number.
  uint64_t Uint(int bytes) {
    uint64_t value = 0;
    for (int i = 0; i < bytes && i < 8; ++i) value |= uint64_t{Byte()} << (8 * i);
    return value;
  }

  // The next `n` bytes, or as many as are left.
  std::string_view Bytes(size_t n) {
    n = std::min(n, size_ - pos_);
    std::string_view out(data_ + pos_, n);
    pos_ += n;
    return out;
  }

  std::string_view Rest() { return Bytes(size_ - pos_); }
  bool empty() const { return pos_ == size_; }

 private:
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace brrr::fuzz

#endif  // BRRR_TESTS_FUZZ_FUZZ_INPUT_H_
