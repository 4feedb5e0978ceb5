// AutoAugment(policy=AutoAugmentPolicy.IMAGENET, interpolation=NEAREST, fill=None): one of the
// policy's 25 sub-policies, each op of it with its probability and magnitude.
#include "transforms/ops/augmentops.h"
#include "transforms/ops/ops.h"
#include "transforms/torchrng.h"

namespace ifs::ops {

namespace {

using augment::Op;

struct PolicyOp
{
    Op op;
    double p;
    int magnitudeId; ///< -1: None
};
using SubPolicy = std::array<PolicyOp, 2>;

// AutoAugment._get_policies, copied from torchvision 0.14.
const std::vector<SubPolicy> &imagenetPolicy()
{
    static const std::vector<SubPolicy> policy{
        {{{Op::Posterize, 0.4, 8}, {Op::Rotate, 0.6, 9}}},
        {{{Op::Solarize, 0.6, 5}, {Op::AutoContrast, 0.6, -1}}},
        {{{Op::Equalize, 0.8, -1}, {Op::Equalize, 0.6, -1}}},
        {{{Op::Posterize, 0.6, 7}, {Op::Posterize, 0.6, 6}}},
        {{{Op::Equalize, 0.4, -1}, {Op::Solarize, 0.2, 4}}},
        {{{Op::Equalize, 0.4, -1}, {Op::Rotate, 0.8, 8}}},
        {{{Op::Solarize, 0.6, 3}, {Op::Equalize, 0.6, -1}}},
        {{{Op::Posterize, 0.8, 5}, {Op::Equalize, 1.0, -1}}},
        {{{Op::Rotate, 0.2, 3}, {Op::Solarize, 0.6, 8}}},
        {{{Op::Equalize, 0.6, -1}, {Op::Posterize, 0.4, 6}}},
        {{{Op::Rotate, 0.8, 8}, {Op::Color, 0.4, 0}}},
        {{{Op::Rotate, 0.4, 9}, {Op::Equalize, 0.6, -1}}},
        {{{Op::Equalize, 0.0, -1}, {Op::Equalize, 0.8, -1}}},
        {{{Op::Invert, 0.6, -1}, {Op::Equalize, 1.0, -1}}},
        {{{Op::Color, 0.6, 4}, {Op::Contrast, 1.0, 8}}},
        {{{Op::Rotate, 0.8, 8}, {Op::Color, 1.0, 2}}},
        {{{Op::Color, 0.8, 8}, {Op::Solarize, 0.8, 7}}},
        {{{Op::Sharpness, 0.4, 7}, {Op::Invert, 0.6, -1}}},
        {{{Op::ShearX, 0.6, 5}, {Op::Equalize, 1.0, -1}}},
        {{{Op::Color, 0.4, 0}, {Op::Equalize, 0.6, -1}}},
        {{{Op::Equalize, 0.4, -1}, {Op::Solarize, 0.2, 4}}},
        {{{Op::Solarize, 0.6, 5}, {Op::AutoContrast, 0.6, -1}}},
        {{{Op::Invert, 0.6, -1}, {Op::Equalize, 1.0, -1}}},
        {{{Op::Color, 0.6, 4}, {Op::Contrast, 1.0, 8}}},
        {{{Op::Equalize, 0.8, -1}, {Op::Equalize, 0.6, -1}}},
    };
    return policy;
}

const std::vector<SubPolicy> &cifar10Policy()
{
    static const std::vector<SubPolicy> policy{
        {{{Op::Invert, 0.1, -1}, {Op::Contrast, 0.2, 6}}},
        {{{Op::Rotate, 0.7, 2}, {Op::TranslateX, 0.3, 9}}},
        {{{Op::Sharpness, 0.8, 1}, {Op::Sharpness, 0.9, 3}}},
        {{{Op::ShearY, 0.5, 8}, {Op::TranslateY, 0.7, 9}}},
        {{{Op::AutoContrast, 0.5, -1}, {Op::Equalize, 0.9, -1}}},
        {{{Op::ShearY, 0.2, 7}, {Op::Posterize, 0.3, 7}}},
        {{{Op::Color, 0.4, 3}, {Op::Brightness, 0.6, 7}}},
        {{{Op::Sharpness, 0.3, 9}, {Op::Brightness, 0.7, 9}}},
        {{{Op::Equalize, 0.6, -1}, {Op::Equalize, 0.5, -1}}},
        {{{Op::Contrast, 0.6, 7}, {Op::Sharpness, 0.6, 5}}},
        {{{Op::Color, 0.7, 7}, {Op::TranslateX, 0.5, 8}}},
        {{{Op::Equalize, 0.3, -1}, {Op::AutoContrast, 0.4, -1}}},
        {{{Op::TranslateY, 0.4, 3}, {Op::Sharpness, 0.2, 6}}},
        {{{Op::Brightness, 0.9, 6}, {Op::Color, 0.2, 8}}},
        {{{Op::Solarize, 0.5, 2}, {Op::Invert, 0.0, -1}}},
        {{{Op::Equalize, 0.2, -1}, {Op::AutoContrast, 0.6, -1}}},
        {{{Op::Equalize, 0.2, -1}, {Op::Equalize, 0.6, -1}}},
        {{{Op::Color, 0.9, 9}, {Op::Equalize, 0.6, -1}}},
        {{{Op::AutoContrast, 0.8, -1}, {Op::Solarize, 0.2, 8}}},
        {{{Op::Brightness, 0.1, 3}, {Op::Color, 0.7, 0}}},
        {{{Op::Solarize, 0.4, 5}, {Op::AutoContrast, 0.9, -1}}},
        {{{Op::TranslateY, 0.9, 9}, {Op::TranslateY, 0.7, 9}}},
        {{{Op::AutoContrast, 0.9, -1}, {Op::Solarize, 0.8, 3}}},
        {{{Op::Equalize, 0.8, -1}, {Op::Invert, 0.1, -1}}},
        {{{Op::TranslateY, 0.7, 9}, {Op::AutoContrast, 0.9, -1}}},
    };
    return policy;
}

const std::vector<SubPolicy> &svhnPolicy()
{
    static const std::vector<SubPolicy> policy{
        {{{Op::ShearX, 0.9, 4}, {Op::Invert, 0.2, -1}}},
        {{{Op::ShearY, 0.9, 8}, {Op::Invert, 0.7, -1}}},
        {{{Op::Equalize, 0.6, -1}, {Op::Solarize, 0.6, 6}}},
        {{{Op::Invert, 0.9, -1}, {Op::Equalize, 0.6, -1}}},
        {{{Op::Equalize, 0.6, -1}, {Op::Rotate, 0.9, 3}}},
        {{{Op::ShearX, 0.9, 4}, {Op::AutoContrast, 0.8, -1}}},
        {{{Op::ShearY, 0.9, 8}, {Op::Invert, 0.4, -1}}},
        {{{Op::ShearY, 0.9, 5}, {Op::Solarize, 0.2, 6}}},
        {{{Op::Invert, 0.9, -1}, {Op::AutoContrast, 0.8, -1}}},
        {{{Op::Equalize, 0.6, -1}, {Op::Rotate, 0.9, 3}}},
        {{{Op::ShearX, 0.9, 4}, {Op::Solarize, 0.3, 3}}},
        {{{Op::ShearY, 0.8, 8}, {Op::Invert, 0.7, -1}}},
        {{{Op::Equalize, 0.9, -1}, {Op::TranslateY, 0.6, 6}}},
        {{{Op::Invert, 0.9, -1}, {Op::Equalize, 0.6, -1}}},
        {{{Op::Contrast, 0.3, 3}, {Op::Rotate, 0.8, 4}}},
        {{{Op::Invert, 0.8, -1}, {Op::TranslateY, 0.0, 2}}},
        {{{Op::ShearY, 0.7, 6}, {Op::Solarize, 0.4, 8}}},
        {{{Op::Invert, 0.6, -1}, {Op::Rotate, 0.8, 4}}},
        {{{Op::ShearY, 0.3, 7}, {Op::TranslateX, 0.9, 3}}},
        {{{Op::ShearX, 0.1, 6}, {Op::Invert, 0.6, -1}}},
        {{{Op::Solarize, 0.7, 2}, {Op::TranslateY, 0.6, 7}}},
        {{{Op::ShearY, 0.8, 4}, {Op::Invert, 0.8, -1}}},
        {{{Op::ShearX, 0.7, 9}, {Op::TranslateY, 0.8, 3}}},
        {{{Op::ShearY, 0.8, 5}, {Op::AutoContrast, 0.7, -1}}},
        {{{Op::ShearX, 0.7, 2}, {Op::Invert, 0.1, -1}}},
    };
    return policy;
}

class AutoAugment final : public PreparedOp
{
public:
    const std::vector<SubPolicy> *policy = nullptr;
    pil::Filter filter = pil::Filter::Nearest;
    std::vector<double> fill{0.0};

    /// _augmentation_space(10, (height, width)): the magnitudes of an op (empty: none) and
    /// whether it is signed.
    static std::pair<std::vector<double>, bool> space(Op op, QSize size)
    {
        using augment::linspace;
        switch (op) {
        case Op::ShearX:
        case Op::ShearY:
            return {linspace(0.0, 0.3, 10), true};
        case Op::TranslateX:
            return {linspace(0.0, 150.0 / 331.0 * size.width(), 10), true};
        case Op::TranslateY:
            return {linspace(0.0, 150.0 / 331.0 * size.height(), 10), true};
        case Op::Rotate:
            return {linspace(0.0, 30.0, 10), true};
        case Op::Brightness:
        case Op::Color:
        case Op::Contrast:
        case Op::Sharpness:
            return {linspace(0.0, 0.9, 10), true};
        case Op::Posterize:
            return {augment::posterizeBins(8, 10, 4.0), false};
        case Op::Solarize:
            return {linspace(255.0, 0.0, 10), false};
        default:
            return {{}, false};
        }
    }

    void apply(RunState &run) const override
    {
        // get_params: the sub-policy, two probabilities, two signs; then each op whose
        // probability drew at most p (float32 comparison).
        const auto id = size_t(run.rng.randint(0, int64_t(policy->size())));
        const float probs[2] = {float(run.rng.rand()), float(run.rng.rand())};
        const int64_t signs[2] = {run.rng.randint(0, 2), run.rng.randint(0, 2)};
        const QSize size = run.size();
        QStringList done;
        for (int i = 0; i < 2; ++i) {
            const PolicyOp &step = (*policy)[id][size_t(i)];
            if (!(probs[i] <= float(step.p)))
                continue;
            const auto [magnitudes, isSigned] = space(step.op, size);
            double magnitude = step.magnitudeId >= 0 && !magnitudes.empty()
                ? magnitudes[size_t(step.magnitudeId)]
                : 0.0;
            if (isSigned && signs[i] == 0)
                magnitude *= -1.0;
            done.append(augment::applyOp(run, step.op, magnitude, filter, fill));
        }
        run.trace->applied = !done.isEmpty();
        run.trace->summary
            = QStringLiteral("sub-policy %1 → %2")
                  .arg(id)
                  .arg(done.isEmpty() ? QStringLiteral("nothing") : done.join(u", "));
    }
};

std::unique_ptr<PreparedOp> prepare(const OpArguments &a)
{
    auto op = std::make_unique<AutoAugment>();
    const V &policy = a[u"policy"];
    if (policy.kind != V::Kind::Enum || !policy.text.startsWith(u"AutoAugmentPolicy."))
        fail(QStringLiteral("policy must be AutoAugmentPolicy.IMAGENET, CIFAR10 or SVHN, not %1")
                 .arg(toPythonLiteral(policy)));
    const QString member = policy.text.mid(18);
    if (member == u"IMAGENET")
        op->policy = &imagenetPolicy();
    else if (member == u"CIFAR10")
        op->policy = &cifar10Policy();
    else if (member == u"SVHN")
        op->policy = &svhnPolicy();
    else
        fail(QStringLiteral("The provided policy %1 is not recognized.").arg(member));
    op->filter = augment::policyInterpolation(a[u"interpolation"]);
    op->fill = augment::policyFill(a[u"fill"]);
    return op;
}

V policyValue(const QString &member)
{
    V v;
    v.kind = V::Kind::Enum;
    v.text = QStringLiteral("AutoAugmentPolicy.") + member;
    return v;
}

} // namespace

const TransformDefinition &autoAugment()
{
    static const TransformDefinition definition{
        .name = QStringLiteral("AutoAugment"),
        .parameters
        = {opt(QStringLiteral("policy"), policyValue(QStringLiteral("IMAGENET"))),
           opt(QStringLiteral("interpolation"), V::interpolation(QStringLiteral("NEAREST"))),
           opt(QStringLiteral("fill"), V::none())},
        .description = QStringLiteral("A learned augmentation policy (ImageNet, CIFAR10 or SVHN)"),
        .category = TransformCategory::Policies,
        .random = true,
        .input = StepInput::Image,
        .prepare = prepare,
    };
    return definition;
}

} // namespace ifs::ops
