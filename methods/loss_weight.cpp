#include "methods/loss_weight.h"

namespace da::methods {

double read_loss_weight(Params& params) {
  return params.number("loss_weight", 1.0,
                       {"weight of the method's loss in the total loss",
                        "Transfer-Learning-Library examples' --trade-off 1 (dann.py, cdan.py, mcc.py); the papers tune "
                        "it per method (e.g. BSP 1e-4, ADVENT 1e-3): set it in the config"},
                       Range::at_least(0.0));
}

}  // namespace da::methods
