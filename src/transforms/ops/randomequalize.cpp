// RandomEqualize(p=0.5): ImageOps.equalize with probability p.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

namespace ifs::ops {

namespace {

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<CoinImageOp>();
    op->p = number(a[u"p"], QStringLiteral("p"));
    op->function = [](const QImage &image, double) {
        return pil::equalize(image);
    };
    op->done = QStringLiteral("histogram equalized");
    return op;
}

} // namespace

const TransformDefinition &randomEqualize()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomEqualize"),
        .parameters = {opt(QStringLiteral("p"), V::real(0.5))},
        .description = QStringLiteral("Equalize the histogram with probability p"),
        .category = TransformCategory::ColourAndBlur,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops
