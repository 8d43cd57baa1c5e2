// Wire-format primitives for the ONNX reader: varints (at most 10 bytes), fixed-width numbers,
// length-delimited sub-messages, skipping of unknown fields.
#include "runtime/protobuf.hpp"

#include <cstring>

#include "core/error.hpp"

namespace hepnn::rt {
namespace {
[[noreturn]] void fail(const std::string& what) { throw Error("[runtime] malformed ONNX file: " + what); }
}  // namespace

WireReader::WireReader(const uint8_t* begin, size_t size, int depth)
    : p_(begin), end_(begin + size), depth_(depth) {
  if (depth > kMaxDepth) fail("messages nested deeper than " + std::to_string(kMaxDepth));
}

uint64_t WireReader::varint() {
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (p_ == end_) fail("truncated varint");
    const uint8_t byte = *p_++;
    // NOTE: the tenth byte may carry only the top bit of a 64-bit value.
    if (i == 9 && byte > 1) fail("varint overflows 64 bits");
    v |= uint64_t(byte & 0x7f) << (7 * i);
    if (!(byte & 0x80)) return v;
  }
  fail("varint longer than 10 bytes");
}

bool WireReader::next(int& field, Wire& wire) {
  if (p_ == end_) return false;
  const uint64_t tag = varint();
  const uint64_t number = tag >> 3;
  if (number == 0 || number > 536870911u) fail("invalid field number");
  field = static_cast<int>(number);
  const int w = static_cast<int>(tag & 7);
  if (w != 0 && w != 1 && w != 2 && w != 5) fail("unsupported wire type " + std::to_string(w));
  wire = static_cast<Wire>(w);
  return true;
}

float WireReader::fixed32_float() {
  if (remaining() < 4) fail("truncated fixed32");
  float f;
  std::memcpy(&f, p_, 4);
  p_ += 4;
  return f;
}

double WireReader::fixed64_double() {
  if (remaining() < 8) fail("truncated fixed64");
  double d;
  std::memcpy(&d, p_, 8);
  p_ += 8;
  return d;
}

WireReader WireReader::sub() {
  const uint64_t len = varint();
  if (len > remaining()) fail("field length " + std::to_string(len) + " exceeds the " +
                              std::to_string(remaining()) + " bytes left");
  WireReader r(p_, size_t(len), depth_ + 1);
  p_ += len;
  return r;
}

std::string WireReader::string() {
  WireReader r = sub();
  return std::string(reinterpret_cast<const char*>(r.p_), r.remaining());
}

void WireReader::skip(Wire wire) {
  switch (wire) {
    case Wire::varint: varint(); return;
    case Wire::fixed64:
      if (remaining() < 8) fail("truncated fixed64");
      p_ += 8;
      return;
    case Wire::fixed32:
      if (remaining() < 4) fail("truncated fixed32");
      p_ += 4;
      return;
    case Wire::bytes: sub(); return;
  }
  fail("unsupported wire type");
}

}  // namespace hepnn::rt
