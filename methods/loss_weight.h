// `loss_weight`, the one parameter every method takes: the framework reads it
// (setup/method_setup.cpp) before the method reads its own, and
// --help-config lists it once for all methods (methods/describe.h).
#pragma once

#include "methods/params.h"

namespace da::methods {

// The weight of a method's loss in the total loss (>= 0, default 1).
double read_loss_weight(Params& params);

}  // namespace da::methods
