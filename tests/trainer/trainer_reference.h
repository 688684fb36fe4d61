// The PyTorch reference values of make_trainer_reference.py, computed once
// per test binary: shared by the loss and optimizer tests and the metrics
// tests.
#pragma once

#include "support/python_reference.h"

namespace da::test {

// The values tests/trainer/make_trainer_reference.py prints, run on first use.
const Reference& reference();

}  // namespace da::test
