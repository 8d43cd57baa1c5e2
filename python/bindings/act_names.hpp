// Activation names as the Python API spells them, shared by every binding that takes `act`.
#pragma once
#include <string>

#include "core/types.hpp"

namespace hepnn::py {

// "none", "relu", "leaky_relu", "elu", "selu", "gelu" (erf form), "gelu_tanh", "sigmoid", "tanh",
// "softplus" -> Act; anything else raises ValueError "[op] unknown activation ..." listing these.
Act parse_act(const std::string& name, const char* op);

// The Python name of an activation (inverse of parse_act).
const char* act_name(Act act);

}  // namespace hepnn::py
