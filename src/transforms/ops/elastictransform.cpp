// ElasticTransform(alpha=50.0, sigma=5.0, interpolation=BILINEAR, fill=0): read, printed and
// exported, but not run: torchvision runs it on tensors.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

QString reason()
{
    return QStringLiteral(
        "torchvision 0.14 turns the image into a tensor and warps it with grid_sample "
        "along a blurred random field (torch.rand of H × W × 2 values, a float conv2d), "
        "which the engine does not reproduce exactly: use RandomAffine or "
        "RandomPerspective");
}

std::unique_ptr<PreparedOp> prepare(const OpArguments &)
{
    fail(reason());
}

} // namespace

const TransformDefinition &elasticTransform()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("ElasticTransform"),
        .parameters
        = {opt(QStringLiteral("alpha"), V::real(50.0)), opt(QStringLiteral("sigma"), V::real(5.0)),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("BILINEAR"))),
           opt(QStringLiteral("fill"), V::integer(0))},
        .description = QStringLiteral("Elastic (water-like) distortion: shown, not run"),
        .category = TransformCategory::FlipAndGeometry,
        .random = true,
        .input = StepInput::Any,
        .prepare = prepare,
        .unsupported = reason(),
    };
    return definition;
}

} // namespace ifs::ops
