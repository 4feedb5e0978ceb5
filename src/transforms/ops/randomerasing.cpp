// RandomErasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False): blanks a
// random rectangle of a tensor.
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"
#include "transforms/transformop.h"

#include <cmath>

namespace ifs::ops {

namespace {

class RandomErasing final : public PreparedOp
{
public:
    double p = 0.5;
    Range scale;
    Range ratio;
    bool eraseRandom = false; ///< value='random': normal noise
    std::vector<double> eraseValue;

    void apply(RunState &run) const override
    {
        ImageTensor &t = run.data.tensor;
        run.trace->applied = run.coin(p);
        if (!run.trace->applied) {
            run.trace->summary = QStringLiteral("not erased");
            return;
        }
        if (!eraseRandom && eraseValue.size() != 1 && int(eraseValue.size()) != t.channels)
            fail(QStringLiteral("If value is a sequence, it should have either a single value or "
                                "%1 (number of input channels)")
                     .arg(t.channels));
        // RandomErasing.get_params: up to ten tries at a rectangle that fits.
        const int imgH = t.height, imgW = t.width;
        const double area = double(imgH) * imgW;
        // torch.log(torch.tensor(ratio)): float32 logarithms, widened to double for uniform_.
        const double logLo = double(TorchGenerator::logf(float(ratio.lo)));
        const double logHi = double(TorchGenerator::logf(float(ratio.hi)));
        for (int attempt = 0; attempt < 10; ++attempt) {
            const double eraseArea = area * run.rng.uniform(scale.lo, scale.hi);
            const double aspect
                = double(TorchGenerator::expf(float(run.rng.uniform(logLo, logHi))));
            const int h = pyRound(std::sqrt(eraseArea * aspect));
            const int w = pyRound(std::sqrt(eraseArea / aspect));
            if (!(h < imgH && w < imgW))
                continue;
            std::vector<float> noise;
            if (eraseRandom) {
                noise.resize(size_t(t.channels) * h * w);
                run.rng.normal(noise.data(), qsizetype(noise.size()));
            }
            const int i = int(run.rng.randint(0, imgH - h + 1));
            const int j = int(run.rng.randint(0, imgW - w + 1));
            for (int c = 0; c < t.channels; ++c)
                for (int y = 0; y < h; ++y)
                    for (int x = 0; x < w; ++x)
                        t.at(c, i + y, j + x) = eraseRandom
                            ? noise[(size_t(c) * h + y) * w + x]
                            : float(eraseValue[eraseValue.size() == 1 ? 0 : size_t(c)]);
            run.setRegion(j, i, w, h);
            run.trace->summary
                = QStringLiteral("i=%1, j=%2, h=%3, w=%4").arg(i).arg(j).arg(h).arg(w);
            return;
        }
        run.trace->applied = false;
        run.trace->summary = QStringLiteral("no region fitted in 10 tries: not erased");
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<RandomErasing>();
    op->p = probability(a[u"p"]);
    op->scale = pair(a[u"scale"], QStringLiteral("scale"));
    op->ratio = pair(a[u"ratio"], QStringLiteral("ratio"));
    if (op->scale.lo < 0 || op->scale.hi > 1)
        fail(QStringLiteral("Scale should be between 0 and 1"));
    if (op->ratio.lo <= 0 || op->ratio.hi <= 0)
        fail(QStringLiteral("ratio values must be positive (their logarithms are taken)"));
    const V &value = a[u"value"];
    if (value.kind == V::Kind::String) {
        if (value.text != u"random")
            fail(QStringLiteral("If value is str, it should be 'random'"));
        op->eraseRandom = true;
    } else if (isNumber(value)) {
        op->eraseValue = {number(value, QStringLiteral("value"))};
    } else if (isSequence(value)) {
        op->eraseValue = numbers(value, QStringLiteral("value"));
    } else {
        fail(QStringLiteral("Argument value should be either a number or str or a sequence"));
    }
    return op;
}

void review(AdviceWalk &walk, int index, const TransformStep &step)
{
    walk.requireTensor(index, step.name);
}

} // namespace

const TransformDefinition &randomErasing()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("RandomErasing"),
        .parameters = {opt(QStringLiteral("p"), V::real(0.5)),
                       opt(QStringLiteral("scale"), floatPair(0.02, 0.33)),
                       opt(QStringLiteral("ratio"), floatPair(0.3, 3.3)),
                       opt(QStringLiteral("value"), V::integer(0)),
                       opt(QStringLiteral("inplace"), V::boolean(false))},
        .description
        = QStringLiteral("Blank out a random rectangle with probability p (tensors only)"),
        .category = TransformCategory::Tensor,
        .random = true,
        .input = StepInput::Tensor,
        .prepare = prepare,
        .review = review,
    };
    return definition;
}

} // namespace ifs::ops
