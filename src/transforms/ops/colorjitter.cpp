// ColorJitter(brightness=0, contrast=0, saturation=0, hue=0): the four adjustments in a random
// order, each with a random factor.
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

#include <cmath>
#include <limits>

namespace ifs::ops {

namespace {

class ColorJitter final : public PreparedOp
{
public:
    std::optional<Range> brightness, contrast, saturation, hue;

    void apply(RunState &run) const override
    {
        // ColorJitter.get_params: the order, then a factor for each adjustment that is on.
        const std::vector<int64_t> order = run.rng.randperm(4);
        auto draw = [&run](const std::optional<Range> &r) -> std::optional<double> {
            if (!r)
                return std::nullopt;
            return run.rng.uniform(r->lo, r->hi);
        };
        const std::optional<double> b = draw(brightness), c = draw(contrast),
                                    sat = draw(saturation), h = draw(hue);
        QImage &image = run.data.image;
        QStringList done;
        for (int64_t fn : order) {
            if (fn == 0 && b) {
                image = pil::adjustBrightness(image, *b);
                done << QStringLiteral("brightness %1").arg(fmt(*b));
            } else if (fn == 1 && c) {
                image = pil::adjustContrast(image, *c);
                done << QStringLiteral("contrast %1").arg(fmt(*c));
            } else if (fn == 2 && sat) {
                image = pil::adjustSaturation(image, *sat);
                done << QStringLiteral("saturation %1").arg(fmt(*sat));
            } else if (fn == 3 && h) {
                image = pil::adjustHue(image, *h);
                done << QStringLiteral("hue %1").arg(fmt(*h));
            }
        }
        run.trace->applied = !done.isEmpty();
        run.trace->summary = done.isEmpty() ? QStringLiteral("no change") : done.join(u", ");
    }
};

/// ColorJitter._check_input: None when the factor can only be `center`.
std::optional<Range> jitterRange(const V &v, const QString &what, double center, Range bound,
                                 bool clipFirstOnZero)
{
    Range r;
    if (isNumber(v)) {
        const double x = number(v, what);
        if (x < 0)
            fail(QStringLiteral("If %1 is a single number, it must be non negative").arg(what));
        r = {center - x, center + x};
        if (clipFirstOnZero)
            r.lo = std::max(r.lo, 0.0);
    } else if (isSequence(v) && v.items.size() == 2) {
        r = pair(v, what);
        if (!(bound.lo <= r.lo && r.lo <= r.hi && r.hi <= bound.hi))
            fail(QStringLiteral("%1 values should be between (%2, %3) and in increasing order")
                     .arg(what, toPythonLiteral(V::real(bound.lo)),
                          std::isinf(bound.hi) ? QStringLiteral("inf")
                                               : toPythonLiteral(V::real(bound.hi))));
    } else {
        fail(
            QStringLiteral("%1 should be a single number or a list/tuple with length 2").arg(what));
    }
    if (r.lo == center && r.hi == center)
        return std::nullopt;
    return r;
}

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<ColorJitter>();
    const Range unbounded{0.0, std::numeric_limits<double>::infinity()};
    op->brightness
        = jitterRange(a[u"brightness"], QStringLiteral("brightness"), 1.0, unbounded, true);
    op->contrast = jitterRange(a[u"contrast"], QStringLiteral("contrast"), 1.0, unbounded, true);
    op->saturation
        = jitterRange(a[u"saturation"], QStringLiteral("saturation"), 1.0, unbounded, true);
    op->hue = jitterRange(a[u"hue"], QStringLiteral("hue"), 0.0, {-0.5, 0.5}, false);
    if (op->hue && (op->hue->lo < -0.5 || op->hue->hi > 0.5))
        fail(QStringLiteral("hue must be at most 0.5 (F.adjust_hue refuses a hue factor "
                            "outside [-0.5, 0.5])"));
    return op;
}

QList<TransformArgument> newStep(const DatasetHints &)
{
    QList<TransformArgument> args;
    for (const char16_t *p : {u"brightness", u"contrast", u"saturation"})
        args.append({QString::fromUtf16(p), V::real(0.2)});
    return args;
}

} // namespace

const TransformDefinition &colorJitter()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("ColorJitter"),
        .parameters = {opt(QStringLiteral("brightness"), V::integer(0)),
                       opt(QStringLiteral("contrast"), V::integer(0)),
                       opt(QStringLiteral("saturation"), V::integer(0)),
                       opt(QStringLiteral("hue"), V::integer(0))},
        .description = QStringLiteral("Randomly change brightness, contrast, saturation and hue"),
        .category = TransformCategory::ColourAndBlur,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops
