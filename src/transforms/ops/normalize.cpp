// Normalize(mean, std, inplace=False): (x − mean) / std per channel, on tensors.
#include "transforms/ops/ops.h"
#include "transforms/transformop.h"

#include <algorithm>
#include <cmath>

namespace ifs::ops {

namespace {

class Normalize final : public PreparedOp
{
public:
    std::vector<float> mean, std;

    void apply(RunState &run) const override
    {
        ImageTensor &t = run.data.tensor;
        auto fits = [&t](size_t n) {
            return n == 1 || int(n) == t.channels;
        };
        if (!fits(mean.size()) || !fits(std.size()))
            fail(QStringLiteral("mean has %1 and std %2 values for a tensor of %3 channel%4: "
                                "give one value or one per channel")
                     .arg(mean.size())
                     .arg(std.size())
                     .arg(t.channels)
                     .arg(t.channels == 1 ? QString() : QStringLiteral("s")));
        const qsizetype n = qsizetype(t.height) * t.width;
        for (int c = 0; c < t.channels; ++c) {
            const float m = mean[mean.size() == 1 ? 0 : size_t(c)];
            const float sd = std[std.size() == 1 ? 0 : size_t(c)];
            float *p = t.plane(c);
            for (qsizetype i = 0; i < n; ++i)
                p[i] = (p[i] - m) / sd; // sub_ then div_, each rounded to float32
        }
        run.trace->summary = QStringLiteral("(x − mean) / std per channel");
    }

    FusedPart fusedPart() const override { return fused::Normalize{mean, std}; }
};

/// One number or a sequence of them, as float32.
std::vector<float> floats(const V &v, const QString &what)
{
    std::vector<float> out;
    for (double x : isNumber(v) ? std::vector<double>{number(v, what)} : numbers(v, what))
        out.push_back(float(x));
    return out;
}

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<Normalize>();
    op->mean = floats(a[u"mean"], QStringLiteral("mean"));
    op->std = floats(a[u"std"], QStringLiteral("std"));
    if (op->mean.empty() || op->std.empty())
        fail(QStringLiteral("mean and std must not be empty"));
    for (float x : op->std)
        if (x == 0.0f)
            fail(QStringLiteral("std evaluated to zero after conversion to float32, leading "
                                "to division by zero"));
    return op;
}

void review(AdviceWalk &walk, int index, const TransformStep &step)
{
    walk.requireTensor(index, step.name);
    walk.normalizeStep = index;
    const std::vector<double> mean = numberList(stepArgument(step, QStringLiteral("mean")));
    const std::vector<double> std = numberList(stepArgument(step, QStringLiteral("std")));
    for (const auto &[what, values] :
         {std::pair{QStringLiteral("mean"), mean}, std::pair{QStringLiteral("std"), std}})
        if (values.size() != 1 && int(values.size()) != walk.channels)
            walk.add(AdviceWalk::Severity::Error, index,
                     QStringLiteral("Normalize has %1 %2 value%3 for %4-channel images: "
                                    "give one value or %4.")
                         .arg(values.size())
                         .arg(what)
                         .arg(values.size() == 1 ? QString() : QStringLiteral("s"))
                         .arg(walk.channels));
    auto varies = [](const std::vector<double> &v) {
        return v.size() > 1 && std::any_of(v.begin(), v.end(), [&v](double x) {
                   return std::abs(x - v[0]) > 1e-6;
               });
    };
    if (walk.traits.gray && walk.channels == 3 && (varies(mean) || varies(std)))
        walk.add(AdviceWalk::Severity::Warning, index,
                 QStringLiteral("This dataset is grayscale, so the three channels are "
                                "equal, but Normalize uses different statistics per "
                                "channel (ImageNet's?): the channels end up different for "
                                "no reason. Compute the dataset's own mean and std, or "
                                "use one value each."));
}

QList<TransformArgument> newStep(const DatasetHints &hints)
{
    if (hints.gray)
        return {positional(floatTuple({0.5})), positional(floatTuple({0.5}))};
    return {positional(floatTuple({0.485, 0.456, 0.406})),
            positional(floatTuple({0.229, 0.224, 0.225}))};
}

} // namespace

const TransformDefinition &normalize()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("Normalize"),
        .parameters = {req(QStringLiteral("mean")), req(QStringLiteral("std")),
                       opt(QStringLiteral("inplace"), V::boolean(false))},
        .description
        = QStringLiteral("Subtract the mean and divide by the std, per channel (tensors only)"),
        .category = TransformCategory::Tensor,
        .random = false,
        .input = StepInput::Tensor,
        .prepare = prepare,
        .review = review,
        .newStep = newStep,
    };
    return definition;
}

} // namespace ifs::ops
