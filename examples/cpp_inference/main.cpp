// hepnn_infer: an exported hepnn classifier applied to events in C++, through hepnn's runtime
// (hepnn/runtime.hpp, linked as hepnn::runtime from the installed Python package).
//   hepnn_infer MODEL.onnx EVENTS.bin [--batch N] [--repeat R] [--print K] [--csv SCORES.csv]
// Runs every event alone (batch 1, the event-loop case) and then in batches of N, R timed passes
// each, prints the first K scores of both, the per-call latency (median, p90, p99) and checks that
// the two agree.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include <hepnn/runtime.hpp>

#include "event_file.hpp"

namespace {

struct Options {
  std::string model, events, csv;
  int64_t batch = 256;
  int64_t repeat = 3;
  int64_t print = 5;
};

Options parse(int argc, char** argv) {
  Options o;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--batch" && has_value) o.batch = std::atoll(argv[++i]);
    else if (a == "--repeat" && has_value) o.repeat = std::atoll(argv[++i]);
    else if (a == "--print" && has_value) o.print = std::atoll(argv[++i]);
    else if (a == "--csv" && has_value) o.csv = argv[++i];
    else if (!a.empty() && a[0] == '-') throw std::invalid_argument("unknown option or missing value: " + a);
    else pos.push_back(a);
  }
  if (pos.size() != 2 || o.batch < 1 || o.repeat < 1 || o.print < 0)
    throw std::invalid_argument(
        "usage: hepnn_infer MODEL.onnx EVENTS.bin [--batch N>=1] [--repeat R>=1] [--print K] [--csv FILE]");
  o.model = pos[0];
  o.events = pos[1];
  return o;
}

// The model must take one float32 (batch, features) input whose feature count fits the file.
void check_model(const hepnn::Model& model, int64_t features) {
  if (model.num_inputs() != 1 || model.input_dtype(0) != HEPNN_FLOAT32 || model.output_dtype(0) != HEPNN_FLOAT32)
    throw std::runtime_error("[hepnn_infer] the model must have one float32 input and a float32 first output");
  const std::vector<int64_t> shape = model.input_shape(0);
  if (shape.size() != 2 || (shape[1] != -1 && shape[1] != features))
    throw std::runtime_error("[hepnn_infer] the model's input is not (batch, " + std::to_string(features) + ")");
}

struct Latency {
  double median, p90, p99, mean;  // microseconds
};

Latency summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  const auto q = [&](double f) { return us[size_t(f * double(us.size() - 1) + 0.5)]; };
  double sum = 0;
  for (double v : us) sum += v;
  return {q(0.5), q(0.9), q(0.99), sum / double(us.size())};
}

double micros(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// Scores of all events, `batch` events per call, `passes` times over the file; per_call receives
// each call's latency in us. The descriptors are built once and run_raw takes them as they are: in
// steady state the loop allocates nothing.
std::vector<float> run_batches(hepnn::Session& session, const hepnn::Model& model, const Events& ev, int64_t batch,
                               int64_t width, int64_t passes, std::vector<double>& per_call) {
  std::vector<float> scores(size_t(ev.n * width));
  const std::string in_name = model.input_name(0), out_name = model.output_name(0);
  int64_t shape[2] = {batch, ev.features};
  hepnn_input in{in_name.c_str(), 0, nullptr, shape, 2};
  hepnn_output out{out_name.c_str(), 0, nullptr, 0};
  per_call.reserve(per_call.size() + size_t(passes * ((ev.n + batch - 1) / batch)));
  for (int64_t pass = 0; pass < passes; ++pass)
  for (int64_t first = 0; first < ev.n; first += batch) {
    shape[0] = std::min(batch, ev.n - first);
    in.data = ev.event(first);
    out.data = scores.data() + first * width;
    out.capacity = shape[0] * width;
    const auto t0 = std::chrono::steady_clock::now();
    session.run_raw(&in, 1, &out, 1);
    per_call.push_back(micros(std::chrono::steady_clock::now() - t0));
  }
  return scores;
}

void print_latency(const char* what, const Latency& l, int64_t events_per_call) {
  std::printf("%-9s median %9.2f us  p90 %9.2f us  p99 %9.2f us  mean %9.2f us  (%.2f us/event)\n", what, l.median,
              l.p90, l.p99, l.mean, l.median / double(events_per_call));
}

int run(const Options& opt) {
  const Events ev = read_events(opt.events);
  const hepnn::Model model(opt.model);  // loaded and validated once; immutable
  check_model(model, ev.features);
  hepnn::Session session(model);        // scratch memory for this thread

  // A warm-up call on one event plans the graph and sizes the scratch memory; the output shape it
  // reports gives the scores per event (1 for a binary classifier).
  const std::vector<int64_t> one{1, ev.features};
  session.run({{model.input_name(0), ev.event(0), one}}, {});
  const std::vector<int64_t> out_shape = session.output_shape(0);
  int64_t width = 1;
  for (size_t d = 1; d < out_shape.size(); ++d) width *= out_shape[d];
  std::printf("model %s: input '%s' (batch, %lld), output '%s' (batch, %lld); %lld events\n", opt.model.c_str(),
              model.input_name(0).c_str(), static_cast<long long>(ev.features), model.output_name(0).c_str(),
              static_cast<long long>(width), static_cast<long long>(ev.n));

  // The first call for a new input shape plans it again (a partial last batch is one): one untimed
  // batched pass keeps planning out of the figures.
  std::vector<double> single_us, batch_us, warmup_us;
  run_batches(session, model, ev, opt.batch, width, 1, warmup_us);
  const std::vector<float> single = run_batches(session, model, ev, 1, width, opt.repeat, single_us);
  const std::vector<float> batched = run_batches(session, model, ev, opt.batch, width, opt.repeat, batch_us);

  // Batch-1 and batched calls may take different kernels (matrix-vector against GEMM) that sum in
  // other orders, so the two agree to float32 rounding, not bit for bit: 1e-4 relative to
  // max(1, |score|) leaves room for the large weights of a first layer that absorbed the scaler.
  double max_diff = 0;
  bool agree = true;
  for (size_t i = 0; i < single.size(); ++i) {
    const double d = std::fabs(double(single[i]) - double(batched[i]));
    max_diff = std::max(max_diff, d);
    agree = agree && d <= 1e-4 * std::max(1.0, std::fabs(double(single[i])));
  }

  std::printf("%8s %14s %14s\n", "event", "score(batch 1)", "score(batched)");
  for (int64_t i = 0; i < std::min(opt.print, ev.n); ++i)
    std::printf("%8lld %14.7f %14.7f\n", static_cast<long long>(i), single[size_t(i * width)], batched[size_t(i * width)]);
  print_latency("batch 1", summarize(single_us), 1);
  print_latency(("batch " + std::to_string(opt.batch)).c_str(), summarize(batch_us), std::min(opt.batch, ev.n));
  std::printf("max |batch 1 - batched| = %.3g (%s)\n", max_diff, agree ? "agree" : "DISAGREE");

  if (!opt.csv.empty()) {
    std::ofstream csv(opt.csv);
    csv.precision(9);  // 9 significant digits: a float32 survives the round trip through text
    csv << "event,output,score_batch1,score_batched\n";
    for (int64_t i = 0; i < ev.n; ++i)
      for (int64_t k = 0; k < width; ++k)
        csv << i << ',' << k << ',' << single[size_t(i * width + k)] << ',' << batched[size_t(i * width + k)] << '\n';
    csv.close();
    if (!csv) throw std::runtime_error("[hepnn_infer] cannot write " + opt.csv);
    std::printf("wrote %s\n", opt.csv.c_str());
  }
  return agree ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const hepnn::RuntimeError& e) {  // the runtime's own failures: "[runtime] ..."
    std::fprintf(stderr, "hepnn_infer: %s (status %d)\n", e.what(), int(e.status));
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hepnn_infer: %s\n", e.what());
    return 2;
  }
}
