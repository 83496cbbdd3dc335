// ByteReader: the fuzz targets' view of their input as a stream of choices.
// Past the end every read returns 0, so any input is a complete program.
#ifndef POLLUX_TESTS_FUZZ_BYTE_READER_H_
#define POLLUX_TESTS_FUZZ_BYTE_READER_H_

#include <cstddef>
#include <cstdint>

namespace pollux::fuzz {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) noexcept : p_(data), end_(data + size) {}
  bool empty() const noexcept { return p_ == end_; }
  uint8_t byte() noexcept { return p_ == end_ ? 0 : *p_++; }
  // Little-endian, `n` bytes (at most 8).
  uint64_t bytes(int n) noexcept {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{byte()} << (8 * i);
    return v;
  }
  // A value in [0, n), n >= 1.
  size_t below(size_t n) noexcept { return byte() % n; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace pollux::fuzz

#endif  // POLLUX_TESTS_FUZZ_BYTE_READER_H_
