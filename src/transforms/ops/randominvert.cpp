// RandomInvert(p=0.5): ImageOps.invert with probability p.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<CoinImageOp>();
    op->p = number(a[u"p"], QStringLiteral("p"));
    op->function = [](const QImage &image, double) {
        return pil::invert(image);
    };
    op->done = QStringLiteral("inverted");
    return op;
}

} // namespace

const TransformDefinition &randomInvert()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomInvert"),
        .parameters = {opt(QStringLiteral("p"), V::real(0.5))},
        .description = QStringLiteral("Invert the colours with probability p"),
        .category = TransformCategory::ColourAndBlur,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops
