// RandomAffine(degrees, translate=None, scale=None, shear=None, interpolation=NEAREST, fill=0,
// center=None).
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

#include <cmath>

namespace ifs::ops {

namespace {

class RandomAffine final : public PreparedOp
{
public:
    Range degrees;
    std::optional<Range> translate;
    std::optional<Range> scaleRange;
    std::vector<double> shear; ///< empty, 2 or 4 values
    pil::Filter filter = pil::Filter::Nearest;
    std::vector<double> fill{0.0};
    std::optional<QPointF> center;

    void apply(RunState &run) const override
    {
        const int width = run.size().width(), height = run.size().height();
        // RandomAffine.get_params, in its order: angle, translation, scale, shear.
        const double angle = run.rng.uniform(degrees.lo, degrees.hi);
        int tx = 0, ty = 0;
        if (translate) {
            const double maxDx = translate->lo * width;
            const double maxDy = translate->hi * height;
            tx = pyRound(run.rng.uniform(-maxDx, maxDx));
            ty = pyRound(run.rng.uniform(-maxDy, maxDy));
        }
        const double scale = scaleRange ? run.rng.uniform(scaleRange->lo, scaleRange->hi) : 1.0;
        double shearX = 0.0, shearY = 0.0;
        if (!shear.empty()) {
            shearX = run.rng.uniform(shear[0], shear[1]);
            if (shear.size() == 4)
                shearY = run.rng.uniform(shear[2], shear[3]);
        }
        const QPointF c = center ? *center : QPointF(width * 0.5, height * 0.5);
        run.data.image
            = pil::transformAffine(run.data.image, run.size(),
                                   inverseAffineMatrix(c, angle, tx, ty, scale, shearX, shearY),
                                   filter, pilFill(fill, channelsOf(run.data.image)));
        run.coords.valid = false;
        run.trace->summary
            = QStringLiteral("angle %1°, translate (%2, %3), scale %4, shear (%5, %6)")
                  .arg(fmt(angle))
                  .arg(tx)
                  .arg(ty)
                  .arg(fmt(scale))
                  .arg(fmt(shearX))
                  .arg(fmt(shearY));
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomAffine>();
    op->degrees = angleRange(a[u"degrees"], QStringLiteral("degrees"));
    if (a[u"translate"].kind != V::Kind::None) {
        op->translate = pair(a[u"translate"], QStringLiteral("translate"));
        for (double t : {op->translate->lo, op->translate->hi})
            if (t < 0.0 || t > 1.0)
                fail(QStringLiteral("translation values should be between 0 and 1"));
    }
    if (a[u"scale"].kind != V::Kind::None) {
        op->scaleRange = pair(a[u"scale"], QStringLiteral("scale"));
        if (op->scaleRange->lo <= 0 || op->scaleRange->hi <= 0)
            fail(QStringLiteral("scale values should be positive"));
    }
    const V &shear = a[u"shear"];
    if (shear.kind != V::Kind::None) {
        if (isNumber(shear)) {
            const Range r = angleRange(shear, QStringLiteral("shear"));
            op->shear = {r.lo, r.hi};
        } else {
            op->shear = numbers(shear, QStringLiteral("shear"));
            if (op->shear.size() != 2 && op->shear.size() != 4)
                fail(QStringLiteral("shear should be a sequence of length 2 or 4"));
        }
    }
    op->filter = interpolation(a[u"interpolation"]);
    if (op->filter != pil::Filter::Nearest && op->filter != pil::Filter::Bilinear
        && op->filter != pil::Filter::Bicubic)
        fail(QStringLiteral("affine supports NEAREST, BILINEAR and BICUBIC only"));
    op->fill = fillValues(a[u"fill"]);
    if (a[u"center"].kind != V::Kind::None) {
        const Range c = pair(a[u"center"], QStringLiteral("center"));
        op->center = QPointF(c.lo, c.hi);
    }
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    return {positional(V::integer(10)), {QStringLiteral("translate"), floatTuple({0.1, 0.1})}};
}

} // namespace

const TransformDefinition &randomAffine()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomAffine"),
        .parameters
        = {req(QStringLiteral("degrees")), opt(QStringLiteral("translate"), V::none()),
           opt(QStringLiteral("scale"), V::none()), opt(QStringLiteral("shear"), V::none()),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("NEAREST"))),
           opt(QStringLiteral("fill"), V::integer(0)), opt(QStringLiteral("center"), V::none())},
        .description = QStringLiteral("Random rotation, translation, scale and shear in one step"),
        .category = TransformCategory::FlipAndGeometry,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops
