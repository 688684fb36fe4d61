#include "trainer/trainer_reference.h"

namespace da::test {

const Reference& reference() {
  static const Reference values = run_reference_script("tests/trainer/make_trainer_reference.py");
  return values;
}

}  // namespace da::test
