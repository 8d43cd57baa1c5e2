// The one table that maps Python activation names to hepnn::Act.
#include "act_names.hpp"

#include <iterator>

#include "core/error.hpp"

namespace hepnn::py {
namespace {

struct Entry {
  const char* name;
  Act act;
};
constexpr Entry kActs[] = {
    {"none", Act::none},         {"relu", Act::relu},         {"leaky_relu", Act::leaky_relu},
    {"elu", Act::elu},           {"selu", Act::selu},         {"gelu", Act::gelu_erf},
    {"gelu_tanh", Act::gelu_tanh}, {"sigmoid", Act::sigmoid}, {"tanh", Act::tanh},
    {"softplus", Act::softplus},
};

}  // namespace

Act parse_act(const std::string& name, const char* op) {
  for (const Entry& e : kActs)
    if (name == e.name) return e.act;
  std::string valid;
  for (const Entry& e : kActs) valid += (valid.empty() ? "" : ", ") + std::string(e.name);
  throw ValueError(op_message(op, "unknown activation '" + name + "'; valid names: " + valid));
}

const char* act_name(Act act) {
  for (const Entry& e : kActs)
    if (e.act == act) return e.name;
  return "unknown";
}

}  // namespace hepnn::py
