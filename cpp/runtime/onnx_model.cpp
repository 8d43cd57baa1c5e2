// Decoding of ModelProto -> OnnxModel. Sizes are checked against the bytes present before any
// allocation, element counts are overflow-checked, and unknown fields are skipped.
#include "runtime/onnx_model.hpp"

#include <cstring>

#include "core/error.hpp"
#include "runtime/protobuf.hpp"

namespace hepnn::rt {
namespace {

[[noreturn]] void fail(const std::string& what) { throw Error("[runtime] malformed ONNX file: " + what); }

// Repeated scalar fields arrive packed (one length-delimited run) or one per tag.
void read_ints(WireReader& r, Wire w, std::vector<int64_t>& out) {
  if (w == Wire::bytes) {
    WireReader p = r.sub();
    while (!p.done()) out.push_back(p.int64());
  } else if (w == Wire::varint) {
    out.push_back(r.int64());
  } else {
    fail("integer list with wire type " + std::to_string(int(w)));
  }
}

void read_floats(WireReader& r, Wire w, std::vector<float>& out) {
  if (w == Wire::bytes) {
    WireReader p = r.sub();
    if (p.remaining() % 4) fail("packed float list of odd length");
    while (!p.done()) out.push_back(p.fixed32_float());
  } else if (w == Wire::fixed32) {
    out.push_back(r.fixed32_float());
  } else {
    fail("float list with wire type " + std::to_string(int(w)));
  }
}

void read_doubles(WireReader& r, Wire w, std::vector<float>& out) {
  if (w == Wire::bytes) {
    WireReader p = r.sub();
    if (p.remaining() % 8) fail("packed double list of odd length");
    while (!p.done()) out.push_back(static_cast<float>(p.fixed64_double()));
  } else if (w == Wire::fixed64) {
    out.push_back(static_cast<float>(r.fixed64_double()));
  } else {
    fail("double list with wire type " + std::to_string(int(w)));
  }
}

void expect(Wire got, Wire want, const char* what) {
  if (got != want) fail(std::string(what) + " has the wrong wire type");
}

OnnxTensor read_tensor(WireReader r) {
  OnnxTensor t;
  const uint8_t* raw = nullptr;
  size_t raw_size = 0;
  bool has_raw = false;
  std::vector<int64_t> i64;
  std::vector<float> f32;
  int field;
  Wire w;
  while (r.next(field, w)) {
    switch (field) {
      case 1: read_ints(r, w, t.dims); break;
      case 2: expect(w, Wire::varint, "TensorProto.data_type"); t.data_type = int(r.int64()); break;
      case 4: read_floats(r, w, f32); break;
      case 5: read_ints(r, w, i64); break;   // int32_data
      case 7: read_ints(r, w, i64); break;   // int64_data
      case 10: read_doubles(r, w, f32); break;
      case 8: expect(w, Wire::bytes, "TensorProto.name"); t.name = r.string(); break;
      case 9: {
        expect(w, Wire::bytes, "TensorProto.raw_data");
        WireReader s = r.sub();
        raw = s.data();
        raw_size = s.remaining();
        has_raw = true;
        break;
      }
      case 13: fail("tensor '" + t.name + "' uses external data, which the runtime does not read");
      case 14: expect(w, Wire::varint, "TensorProto.data_location");
        if (r.int64() != 0) fail("tensor '" + t.name + "' uses external data, which the runtime does not read");
        break;
      default: r.skip(w);
    }
  }
  int64_t n = 1;
  for (int64_t d : t.dims) {
    if (d < 0) fail("tensor '" + t.name + "' has a negative dimension " + std::to_string(d));
    if (d > kMaxElements || (d > 0 && n > kMaxElements / d))
      fail("tensor '" + t.name + "' has more than 2^31 elements");
    n *= d;
  }
  size_t elem = 0;
  switch (t.data_type) {
    case kFloat: elem = 4; break;
    case kDouble: elem = 8; break;
    case kInt32: elem = 4; t.is_int = true; break;
    case kInt64: elem = 8; t.is_int = true; break;
    case kBool: elem = 1; t.is_int = true; break;  // Dropout's training_mode
    default: fail("tensor '" + t.name + "' has data type " + std::to_string(t.data_type) +
                  " (supported: FLOAT, DOUBLE, INT32, INT64, BOOL)");
  }
  if (has_raw) {
    // NOTE: the count comes from dims and is checked against bytes present before allocating.
    if (raw_size != size_t(n) * elem)
      fail("tensor '" + t.name + "' holds " + std::to_string(raw_size) + " bytes of raw data, its dims need " +
           std::to_string(size_t(n) * elem));
    if (t.is_int) {
      t.ints.resize(size_t(n));
      for (int64_t k = 0; k < n; ++k) {
        if (elem == 8) std::memcpy(&t.ints[k], raw + 8 * k, 8);
        else if (elem == 1) t.ints[k] = raw[k];
        else { int32_t v; std::memcpy(&v, raw + 4 * k, 4); t.ints[k] = v; }
      }
    } else {
      t.floats.resize(size_t(n));
      for (int64_t k = 0; k < n; ++k) {
        if (elem == 4) std::memcpy(&t.floats[k], raw + 4 * k, 4);
        else { double v; std::memcpy(&v, raw + 8 * k, 8); t.floats[k] = static_cast<float>(v); }
      }
    }
  } else if (t.is_int) {
    if (int64_t(i64.size()) != n)
      fail("tensor '" + t.name + "' holds " + std::to_string(i64.size()) + " values, its dims need " + std::to_string(n));
    t.ints = std::move(i64);
  } else {
    if (int64_t(f32.size()) != n)
      fail("tensor '" + t.name + "' holds " + std::to_string(f32.size()) + " values, its dims need " + std::to_string(n));
    t.floats = std::move(f32);
  }
  return t;
}

OnnxAttribute read_attribute(WireReader r) {
  OnnxAttribute a;
  int field;
  Wire w;
  while (r.next(field, w)) {
    switch (field) {
      case 1: expect(w, Wire::bytes, "AttributeProto.name"); a.name = r.string(); break;
      case 20: expect(w, Wire::varint, "AttributeProto.type"); a.type = int(r.int64()); break;
      case 2: expect(w, Wire::fixed32, "AttributeProto.f"); a.f = r.fixed32_float(); break;
      case 3: expect(w, Wire::varint, "AttributeProto.i"); a.i = r.int64(); break;
      case 4: expect(w, Wire::bytes, "AttributeProto.s"); a.s = r.string(); break;
      case 5:
        expect(w, Wire::bytes, "AttributeProto.t");
        a.t.clear();
        a.t.push_back(read_tensor(r.sub()));
        break;
      case 7: read_floats(r, w, a.floats); break;
      case 8: read_ints(r, w, a.ints); break;
      case 9: expect(w, Wire::bytes, "AttributeProto.strings"); a.strings.push_back(r.string()); break;
      default: r.skip(w);
    }
  }
  return a;
}

OnnxNode read_node(WireReader r) {
  OnnxNode n;
  int field;
  Wire w;
  while (r.next(field, w)) {
    switch (field) {
      case 1: expect(w, Wire::bytes, "NodeProto.input"); n.inputs.push_back(r.string()); break;
      case 2: expect(w, Wire::bytes, "NodeProto.output"); n.outputs.push_back(r.string()); break;
      case 3: expect(w, Wire::bytes, "NodeProto.name"); n.name = r.string(); break;
      case 4: expect(w, Wire::bytes, "NodeProto.op_type"); n.op_type = r.string(); break;
      case 7: expect(w, Wire::bytes, "NodeProto.domain"); n.domain = r.string(); break;
      case 5: expect(w, Wire::bytes, "NodeProto.attribute"); n.attributes.push_back(read_attribute(r.sub())); break;
      default: r.skip(w);
    }
  }
  return n;
}

// TypeProto -> elem_type and shape of a tensor type.
void read_type(WireReader r, OnnxValueInfo& v) {
  int field;
  Wire w;
  while (r.next(field, w)) {
    if (field != 1 || w != Wire::bytes) { r.skip(w); continue; }
    WireReader tt = r.sub();
    int f2;
    Wire w2;
    while (tt.next(f2, w2)) {
      if (f2 == 1 && w2 == Wire::varint) {
        v.elem_type = int(tt.int64());
      } else if (f2 == 2 && w2 == Wire::bytes) {
        v.has_shape = true;
        v.dims.clear();
        WireReader shape = tt.sub();
        int f3;
        Wire w3;
        while (shape.next(f3, w3)) {
          if (f3 != 1 || w3 != Wire::bytes) { shape.skip(w3); continue; }
          WireReader dim = shape.sub();
          int64_t value = -1;
          int f4;
          Wire w4;
          while (dim.next(f4, w4)) {
            if (f4 == 1 && w4 == Wire::varint) {
              value = dim.int64();
              if (value < 0) fail("value '" + v.name + "' has a negative dimension " + std::to_string(value));
              if (value > kMaxElements) fail("value '" + v.name + "' has an absurd dimension " + std::to_string(value));
            } else {
              dim.skip(w4);  // dim_param, denotation: a symbolic dimension
            }
          }
          v.dims.push_back(value);
        }
      } else {
        tt.skip(w2);
      }
    }
  }
}

OnnxValueInfo read_value_info(WireReader r) {
  OnnxValueInfo v;
  int field;
  Wire w;
  while (r.next(field, w)) {
    if (field == 1 && w == Wire::bytes) v.name = r.string();
    else if (field == 2 && w == Wire::bytes) read_type(r.sub(), v);
    else r.skip(w);
  }
  return v;
}

void read_graph(WireReader r, OnnxModel& m) {
  int field;
  Wire w;
  while (r.next(field, w)) {
    if (w != Wire::bytes) { r.skip(w); continue; }
    switch (field) {
      case 1: m.nodes.push_back(read_node(r.sub())); break;
      case 5: m.initializers.push_back(read_tensor(r.sub())); break;
      case 11: m.inputs.push_back(read_value_info(r.sub())); break;
      case 12: m.outputs.push_back(read_value_info(r.sub())); break;
      case 15: fail("sparse initializers are not supported");
      default: r.skip(w);
    }
  }
}

}  // namespace

OnnxModel parse_onnx(const uint8_t* data, size_t size) {
  if (size == 0) throw Error("[runtime] empty file: not an ONNX model");
  OnnxModel m;
  bool has_graph = false;
  WireReader r(data, size);
  int field;
  Wire w;
  while (r.next(field, w)) {
    if (field == 1 && w == Wire::varint) {
      m.ir_version = r.int64();
    } else if (field == 8 && w == Wire::bytes) {
      WireReader op = r.sub();
      std::string domain;
      int64_t version = -1;
      int f2;
      Wire w2;
      while (op.next(f2, w2)) {
        if (f2 == 1 && w2 == Wire::bytes) domain = op.string();
        else if (f2 == 2 && w2 == Wire::varint) version = op.int64();
        else op.skip(w2);
      }
      if (domain.empty() || domain == "ai.onnx") m.opset = version;
    } else if (field == 7 && w == Wire::bytes) {
      if (has_graph) fail("more than one graph");
      has_graph = true;
      read_graph(r.sub(), m);
    } else {
      r.skip(w);
    }
  }
  if (!has_graph) throw Error("[runtime] not an ONNX model: no graph found");
  if (m.ir_version <= 0) throw Error("[runtime] not an ONNX model: no ir_version");
  return m;
}

}  // namespace hepnn::rt
