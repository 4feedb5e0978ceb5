// AugMix(severity=3, mixture_width=3, chain_depth=-1, alpha=1.0, all_ops=True,
// interpolation=BILINEAR, fill=None): read, printed and exported, but not run: torchvision runs it
// on tensors.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

QString reason()
{
    return QStringLiteral(
        "torchvision 0.14 runs AugMix on a uint8 tensor (its ops through torch's tensor "
        "kernels, its mixing weights from torch's Dirichlet sampler), which the engine "
        "does not reproduce exactly: use TrivialAugmentWide, RandAugment or AutoAugment, "
        "which work on PIL images");
}

std::unique_ptr<PreparedOp> prepare(const OpArguments &)
{
    fail(reason());
}

} // namespace

const TransformDefinition &augMix()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("AugMix"),
        .parameters
        = {opt(QStringLiteral("severity"), V::integer(3)),
           opt(QStringLiteral("mixture_width"), V::integer(3)),
           opt(QStringLiteral("chain_depth"), V::integer(-1)),
           opt(QStringLiteral("alpha"), V::real(1.0)),
           opt(QStringLiteral("all_ops"), V::boolean(true)),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("BILINEAR"))),
           opt(QStringLiteral("fill"), V::none())},
        .description = QStringLiteral("Mixes augmentation chains (AugMix): shown, not run"),
        .category = TransformCategory::Policies,
        .random = true,
        .input = StepInput::Any,
        .prepare = prepare,
        .unsupported = reason(),
    };
    return definition;
}

} // namespace ifs::ops
