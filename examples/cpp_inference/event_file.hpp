// Reader of the event files prepare.py writes: the 8 bytes "HEPNNEV1", int64 n_events, int64
// n_features (little-endian), then n_events x n_features float32 features, row-major.
// A file that is short, too long, or holds a non-finite feature is refused with the event named.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

struct Events {
  int64_t n = 0;           // events
  int64_t features = 0;    // features per event
  std::vector<float> x;    // n x features
  const float* event(int64_t i) const { return x.data() + i * features; }
};

inline Events read_events(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("[events] cannot open " + path);
  char magic[8];
  int64_t head[2];
  if (!f.read(magic, 8) || std::memcmp(magic, "HEPNNEV1", 8) != 0)
    throw std::runtime_error("[events] " + path + " is not an event file (no HEPNNEV1 header)");
  if (!f.read(reinterpret_cast<char*>(head), sizeof head))
    throw std::runtime_error("[events] " + path + " ends inside the header");
  Events ev;
  ev.n = head[0];
  ev.features = head[1];
  // Bounds before multiplying: a hostile header must not overflow the size or allocate terabytes.
  if (ev.n < 1 || ev.features < 1 || ev.features > (int64_t(1) << 20) || ev.n > (int64_t(1) << 40) / ev.features)
    throw std::runtime_error("[events] " + path + " declares " + std::to_string(ev.n) + " events of " +
                             std::to_string(ev.features) + " features");
  const int64_t count = ev.n * ev.features;
  f.seekg(0, std::ios::end);
  const int64_t payload = int64_t(f.tellg()) - 24;
  if (payload != count * int64_t(sizeof(float)))
    throw std::runtime_error("[events] " + path + " holds " + std::to_string(payload) + " bytes of features, the header says " +
                             std::to_string(count * int64_t(sizeof(float))));
  ev.x.resize(size_t(count));
  f.seekg(24);
  if (!f.read(reinterpret_cast<char*>(ev.x.data()), count * int64_t(sizeof(float))))
    throw std::runtime_error("[events] cannot read " + path);
  for (int64_t i = 0; i < count; ++i)
    if (!std::isfinite(ev.x[size_t(i)]))
      throw std::runtime_error("[events] event " + std::to_string(i / ev.features) + ", feature " +
                               std::to_string(i % ev.features) + " is not finite");
  return ev;
}
