// A bounds-checked reader of the protobuf wire format: enough to decode ONNX files with no
// protobuf library. Every read is checked against the end of its buffer; errors throw hepnn::Error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace hepnn::rt {

enum class Wire : int { varint = 0, fixed64 = 1, bytes = 2, fixed32 = 5 };

// A view of one message's bytes. Nested messages are read through sub(), which carries the
// nesting depth so that a hostile file cannot recurse without bound.
class WireReader {
 public:
  WireReader(const uint8_t* begin, size_t size, int depth = 0);

  bool done() const { return p_ == end_; }
  size_t remaining() const { return size_t(end_ - p_); }
  int depth() const { return depth_; }

  // Reads the next tag; returns false at the end of the message.
  bool next(int& field, Wire& wire);
  uint64_t varint();
  int64_t int64() { return static_cast<int64_t>(varint()); }
  float fixed32_float();
  double fixed64_double();
  // A length-delimited field: the length is checked against the bytes that remain.
  WireReader sub();
  std::string string();
  // Skips a field of an unknown number (groups, wire types 3/4, are refused).
  void skip(Wire wire);
  const uint8_t* data() const { return p_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  int depth_;
};

// Messages nest at most this deep; ONNX's subset needs 6 (Model/Graph/ValueInfo/Type/Shape/Dim).
constexpr int kMaxDepth = 16;

}  // namespace hepnn::rt
