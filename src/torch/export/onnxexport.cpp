// ONNX export: the traced forward graph of our model (the same trace as the TorchScript export)
// translated op by op into ONNX nodes with the ONNX protobuf classes, BatchNorm folded into the
// convolutions before it, in the forms that OpenCV 4.6's importer runs (no Clip, no Identity,
// per-channel constants as [C, 1, 1], ConvNeXt's channels-last blocks as NCHW 1×1 convolutions),
// then checked with onnx::checker. See exportkit.h.

#include "torch/export/exportkit.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <opencv2/dnn.hpp>

#include <torch/csrc/jit/ir/constants.h>

#include <QFile>

#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace ifs::tm {

namespace {

using torch::jit::Node;
using torch::jit::Value;

/// A thin kit over onnx::GraphProto: unique names, initializers from torch tensors, nodes with
/// attributes.
class OnnxBuilder
{
public:
    explicit OnnxBuilder(onnx::GraphProto *graph)
        : m_graph(graph)
    { }

    std::string fresh(const char *prefix) { return prefix + std::to_string(m_next++); }

    /// A float32 initializer holding `tensor`.
    std::string constant(const torch::Tensor &tensor)
    {
        const torch::Tensor t = tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
        onnx::TensorProto *init = m_graph->add_initializer();
        init->set_name(fresh("w"));
        init->set_data_type(onnx::TensorProto::FLOAT);
        for (const int64_t d : t.sizes())
            init->add_dims(d);
        init->set_raw_data(t.data_ptr(), size_t(t.numel()) * sizeof(float));
        return init->name();
    }
    std::string scalar(double v) { return constant(torch::full({1}, v, torch::kFloat)); }

    onnx::NodeProto &node(const char *op, const std::vector<std::string> &inputs,
                          const std::string &output = {})
    {
        onnx::NodeProto *n = m_graph->add_node();
        n->set_op_type(op);
        for (const std::string &input : inputs)
            n->add_input(input);
        n->add_output(output.empty() ? fresh("t") : output);
        return *n;
    }
    /// A node's output name.
    std::string add(const char *op, const std::vector<std::string> &inputs)
    {
        return node(op, inputs).output(0);
    }

    static void ints(onnx::NodeProto &n, const char *name, const std::vector<int64_t> &values)
    {
        onnx::AttributeProto *a = n.add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::INTS);
        for (const int64_t v : values)
            a->add_ints(v);
    }
    static void integer(onnx::NodeProto &n, const char *name, int64_t value)
    {
        onnx::AttributeProto *a = n.add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(value);
    }
    static void real(onnx::NodeProto &n, const char *name, double value)
    {
        onnx::AttributeProto *a = n.add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::FLOAT);
        a->set_f(float(value));
    }

    onnx::GraphProto *graph() { return m_graph; }

private:
    onnx::GraphProto *m_graph;
    int m_next = 0;
};

/// adaptive_avg_pool2d to a size that does not divide the map (small_cnn's 7×7 → 4×4): kept as
/// a linear map and folded into the Linear after the Flatten.
struct PendingPool
{
    std::string input; ///< the N×C×H×W map
    int64_t channels = 0, height = 0, width = 0, outH = 0, outW = 0;
    bool flattened = false;
};

struct ConvArgs
{
    torch::Tensor weight, bias;
    std::vector<int64_t> stride, padding, dilation;
    int64_t groups = 1;
};

class GraphConverter
{
public:
    GraphConverter(OnnxBuilder &builder, torch::jit::Module &root, torch::jit::Graph &graph)
        : b(builder)
        , m_root(root)
        , m_graph(graph)
    { }

    Status run(const std::string &inputName);
    std::string outputName() const { return name(m_graph.outputs().at(0)); }
    bool fixedSize() const { return m_fixedSize; }

private:
    OnnxBuilder &b;
    torch::jit::Module &m_root;
    torch::jit::Graph &m_graph;
    std::unordered_map<const Value *, std::string> m_names;
    std::unordered_set<const Value *> m_nhwc; ///< channels-last tensors (kept NCHW here)
    std::unordered_map<const Value *, PendingPool> m_pools;
    std::unordered_set<const Node *> m_done; ///< BatchNorms folded into their convolution
    std::unordered_map<const Value *, torch::Tensor> m_folded; ///< ops on constants (weight.t())
    bool m_fixedSize = false;

    c10::IValue constant(const Value *v) const;
    torch::Tensor tensor(const Value *v) const;
    std::vector<int64_t> ints(const Value *v) const;
    std::vector<int64_t> shape(const Value *v) const;
    bool isNone(const Value *v) const { return v->type()->kind() == c10::TypeKind::NoneType; }
    /// The ONNX name of a computed tensor, or an initializer for a constant one.
    std::string name(const Value *v) const;
    /// `nhwc`: the other operand is channels-last, so a 1-D constant (a bias) becomes [C, 1, 1].
    std::string operand(const Value *v, bool nhwc = false);
    void alias(const Value *from, const Value *to);
    void set(const Value *v, const std::string &onnxName, bool nhwc = false);

    Status convert(const Node *n);
    Status convolution(const Node *n, const ConvArgs &args);
    Status pool(const Node *n, bool max);
    Status adaptivePool(const Node *n);
    Status linear(const Node *n, const Value *input, torch::Tensor weight, torch::Tensor bias);
    Status layerNorm(const Node *n);
    Status binary(const Node *n, const char *op);
    Status activation(const Node *n, const std::string &kind);
};

c10::IValue GraphConverter::constant(const Value *v) const
{
    if (auto it = m_folded.find(v); it != m_folded.end())
        return it->second;
    if (v == m_graph.inputs().at(0))
        return m_root._ivalue();
    const Node *n = v->node();
    if (n->kind() == c10::prim::GetAttr)
        return constant(n->input(0)).toObject()->getAttr(n->s(c10::attr::name));
    if (n->kind() == c10::prim::Constant) {
        if (auto value = torch::jit::toIValue(v))
            return *value;
    }
    throw std::runtime_error("a value of " + std::string(n->kind().toQualString())
                             + " is not a constant");
}

torch::Tensor GraphConverter::tensor(const Value *v) const
{
    if (isNone(v))
        return {};
    return constant(v).toTensor();
}

std::vector<int64_t> GraphConverter::ints(const Value *v) const
{
    if (v->node()->kind() == c10::prim::ListConstruct) {
        std::vector<int64_t> out;
        for (const Value *item : v->node()->inputs())
            out.push_back(constant(item).toInt());
        return out;
    }
    return constant(v).toIntVector();
}

std::vector<int64_t> GraphConverter::shape(const Value *v) const
{
    if (auto type = v->type()->cast<c10::TensorType>()) {
        if (auto sizes = type->sizes().concrete_sizes())
            return *sizes;
    }
    return {};
}

std::string GraphConverter::name(const Value *v) const
{
    const auto it = m_names.find(v);
    return it == m_names.end() ? std::string() : it->second;
}

std::string GraphConverter::operand(const Value *v, bool nhwc)
{
    if (std::string known = name(v); !known.empty())
        return known;
    const c10::IValue value = constant(v);
    if (value.isTensor()) {
        const torch::Tensor t = value.toTensor();
        return b.constant(nhwc && t.dim() == 1 ? t.view({-1, 1, 1}) : t);
    }
    return b.scalar(value.toScalar().toDouble());
}

void GraphConverter::alias(const Value *from, const Value *to)
{
    m_names[to] = name(from);
    if (m_nhwc.count(from))
        m_nhwc.insert(to);
    if (auto it = m_pools.find(from); it != m_pools.end())
        m_pools[to] = it->second;
}

void GraphConverter::set(const Value *v, const std::string &onnxName, bool nhwc)
{
    m_names[v] = onnxName;
    if (nhwc)
        m_nhwc.insert(v);
}

Status GraphConverter::run(const std::string &inputName)
{
    set(m_graph.inputs().at(1), inputName);
    for (const Node *n : m_graph.nodes()) {
        if (m_done.count(n))
            continue;
        if (Status ok = convert(n); !ok)
            return ok;
    }
    if (name(m_graph.outputs().at(0)).empty() || m_pools.count(m_graph.outputs().at(0)))
        return Error{QStringLiteral("the model's output has no ONNX form")};
    return success();
}

Status GraphConverter::convert(const Node *n)
{
    const c10::Symbol kind = n->kind();
    if (kind == c10::prim::Constant || kind == c10::prim::GetAttr
        || kind == c10::prim::ListConstruct)
        return success(); // read where they are used
    std::string op = kind.toUnqualString();
    if (op.size() > 1 && op.back() == '_')
        op.pop_back(); // in-place variants: the same result
    if (op == "_convolution" || op == "conv2d") {
        ConvArgs args{tensor(n->input(1)), tensor(n->input(2)),
                      ints(n->input(3)),   ints(n->input(4)),
                      ints(n->input(5)),   constant(n->input(op == "conv2d" ? 6 : 8)).toInt()};
        if (op == "_convolution" && constant(n->input(6)).toBool())
            return Error{QStringLiteral("transposed convolutions have no ONNX form here")};
        return convolution(n, args);
    }
    if (op == "max_pool2d" || op == "avg_pool2d")
        return pool(n, op == "max_pool2d");
    if (op == "adaptive_avg_pool2d")
        return adaptivePool(n);
    if (op == "linear")
        return linear(n, n->input(0), tensor(n->input(1)), tensor(n->input(2)));
    if (op == "t") {
        // A Linear's weight transposed (its decomposition into t + addmm or matmul).
        if (!name(n->input(0)).empty())
            return Error{QStringLiteral("a transpose of computed values has no ONNX form here")};
        m_folded[n->output()] = tensor(n->input(0)).t();
        return success();
    }
    if (op == "addmm") {
        if (constant(n->input(3)).toScalar().toDouble() != 1.0
            || constant(n->input(4)).toScalar().toDouble() != 1.0)
            return Error{QStringLiteral("addmm with beta or alpha has no ONNX form here")};
        return linear(n, n->input(1), tensor(n->input(2)).t(), tensor(n->input(0)));
    }
    if (op == "matmul") {
        if (!name(n->input(1)).empty() || tensor(n->input(1)).dim() != 2)
            return Error{QStringLiteral("matmul other than by a weight has no ONNX form here")};
        return linear(n, n->input(0), tensor(n->input(1)).t(), {});
    }
    if (op == "layer_norm")
        return layerNorm(n);
    if (op == "add")
        return binary(n, "Add");
    if (op == "mul")
        return binary(n, "Mul");
    if (op == "dropout" || op == "feature_dropout" || op == "alpha_dropout" || op == "contiguous"
        || op == "detach") {
        alias(n->input(0), n->output());
        return success();
    }
    if (op == "flatten") {
        if (constant(n->input(1)).toInt() != 1 || constant(n->input(2)).toInt() != -1)
            return Error{QStringLiteral("flatten other than from dimension 1 has no ONNX form")};
        if (auto it = m_pools.find(n->input(0)); it != m_pools.end()) {
            m_pools[n->output()] = it->second;
            m_pools[n->output()].flattened = true;
            return success();
        }
        onnx::NodeProto &node = b.node("Flatten", {name(n->input(0))});
        OnnxBuilder::integer(node, "axis", 1);
        set(n->output(), node.output(0));
        return success();
    }
    if (op == "permute") {
        const std::vector<int64_t> dims = ints(n->input(1));
        const bool nhwc = m_nhwc.count(n->input(0)) > 0;
        if (!nhwc && dims == std::vector<int64_t>{0, 2, 3, 1}) {
            set(n->output(), name(n->input(0)), true);
            return success();
        }
        if (nhwc && dims == std::vector<int64_t>{0, 3, 1, 2}) {
            set(n->output(), name(n->input(0)));
            return success();
        }
        return Error{QStringLiteral("this permute has no ONNX form here")};
    }
    if (op == "cat") {
        const Node *list = n->input(0)->node();
        if (list->kind() != c10::prim::ListConstruct || constant(n->input(1)).toInt() != 1)
            return Error{QStringLiteral("cat other than along the channels has no ONNX form")};
        std::vector<std::string> inputs;
        for (const Value *v : list->inputs())
            inputs.push_back(name(v));
        onnx::NodeProto &node = b.node("Concat", inputs);
        OnnxBuilder::integer(node, "axis", 1);
        set(n->output(), node.output(0));
        return success();
    }
    if (op == "batch_norm") {
        torch::Tensor weight = tensor(n->input(1)), bias = tensor(n->input(2));
        const torch::Tensor mean = tensor(n->input(3)), var = tensor(n->input(4));
        if (!weight.defined())
            weight = torch::ones_like(mean);
        if (!bias.defined())
            bias = torch::zeros_like(mean);
        onnx::NodeProto &node = b.node("BatchNormalization",
                                       {name(n->input(0)), b.constant(weight), b.constant(bias),
                                        b.constant(mean), b.constant(var)});
        OnnxBuilder::real(node, "epsilon", constant(n->input(7)).toScalar().toDouble());
        set(n->output(), node.output(0));
        return success();
    }
    return activation(n, op);
}

Status GraphConverter::activation(const Node *n, const std::string &op)
{
    const std::string x = name(n->input(0));
    const bool nhwc = m_nhwc.count(n->input(0)) > 0;
    std::string out;
    auto hardSigmoid = [&](double alpha, double beta) {
        onnx::NodeProto &node = b.node("HardSigmoid", {x});
        OnnxBuilder::real(node, "alpha", alpha);
        OnnxBuilder::real(node, "beta", beta);
        return node.output(0);
    };
    if (op == "relu") {
        out = b.add("Relu", {x});
    } else if (op == "hardtanh" || op == "relu6") {
        // ReLU6. OpenCV 4.6 reads Clip only with attributes (opset ≤ 10): 6·HardSigmoid(x/6).
        if (op == "hardtanh"
            && (constant(n->input(1)).toScalar().toDouble() != 0.0
                || constant(n->input(2)).toScalar().toDouble() != 6.0))
            return Error{QStringLiteral("hardtanh other than ReLU6 has no ONNX form here")};
        out = b.add("Mul", {hardSigmoid(1.0 / 6.0, 0.0), b.scalar(6.0)});
    } else if (op == "hardswish") {
        out = b.add("Mul", {x, hardSigmoid(1.0 / 6.0, 0.5)});
    } else if (op == "hardsigmoid") {
        out = hardSigmoid(1.0 / 6.0, 0.5);
    } else if (op == "silu") {
        out = b.add("Mul", {x, b.add("Sigmoid", {x})});
    } else if (op == "sigmoid") {
        out = b.add("Sigmoid", {x});
    } else if (op == "gelu") {
        if (n->inputs().size() > 1 && constant(n->input(1)).toStringRef() != "none")
            return Error{QStringLiteral("tanh-approximated GELU has no ONNX form here")};
        const std::string erf = b.add("Erf", {b.add("Div", {x, b.scalar(std::sqrt(2.0))})});
        out = b.add("Mul", {b.add("Mul", {x, b.add("Add", {erf, b.scalar(1.0)})}), b.scalar(0.5)});
    } else {
        return Error{QStringLiteral("the operation aten::%1 has no ONNX form here")
                         .arg(QString::fromStdString(op))};
    }
    set(n->output(), out, nhwc);
    return success();
}

Status GraphConverter::convolution(const Node *n, const ConvArgs &args)
{
    torch::Tensor weight = args.weight;
    torch::Tensor bias = args.bias.defined() ? args.bias : torch::zeros({weight.size(0)});
    const Value *out = n->output();
    // Fold the BatchNorm that alone reads this convolution: W·s, (b − μ)·s + β, s = γ/√(var+ε).
    if (out->uses().size() == 1) {
        const Node *user = out->uses().front().user;
        const std::string userOp = user->kind().toUnqualString();
        if ((userOp == "batch_norm" || userOp == "batch_norm_") && user->input(0) == out) {
            const torch::Tensor mean = tensor(user->input(3)), var = tensor(user->input(4));
            torch::Tensor gamma = tensor(user->input(1)), beta = tensor(user->input(2));
            if (!gamma.defined())
                gamma = torch::ones_like(mean);
            if (!beta.defined())
                beta = torch::zeros_like(mean);
            const double eps = constant(user->input(7)).toScalar().toDouble();
            const torch::Tensor s
                = gamma.to(torch::kDouble) / (var.to(torch::kDouble) + eps).sqrt();
            weight = weight.to(torch::kDouble) * s.view({-1, 1, 1, 1});
            bias
                = (bias.to(torch::kDouble) - mean.to(torch::kDouble)) * s + beta.to(torch::kDouble);
            m_done.insert(user);
            out = user->output();
        }
    }
    onnx::NodeProto &node
        = b.node("Conv", {name(n->input(0)), b.constant(weight), b.constant(bias)});
    OnnxBuilder::ints(node, "kernel_shape", {weight.size(2), weight.size(3)});
    OnnxBuilder::ints(node, "strides", args.stride);
    OnnxBuilder::ints(node, "pads",
                      {args.padding[0], args.padding[1], args.padding[0], args.padding[1]});
    OnnxBuilder::ints(node, "dilations", args.dilation);
    OnnxBuilder::integer(node, "group", args.groups);
    set(out, node.output(0));
    return success();
}

Status GraphConverter::pool(const Node *n, bool max)
{
    const std::vector<int64_t> kernel = ints(n->input(1));
    std::vector<int64_t> stride = ints(n->input(2));
    const std::vector<int64_t> padding = ints(n->input(3));
    if (stride.empty())
        stride = kernel;
    const auto pair = [](std::vector<int64_t> v) {
        return v.size() == 1 ? std::vector<int64_t>{v[0], v[0]} : v;
    };
    const std::vector<int64_t> k = pair(kernel), s = pair(stride), p = pair(padding);
    onnx::NodeProto &node = b.node(max ? "MaxPool" : "AveragePool", {name(n->input(0))});
    OnnxBuilder::ints(node, "kernel_shape", k);
    OnnxBuilder::ints(node, "strides", s);
    OnnxBuilder::ints(node, "pads", {p[0], p[1], p[0], p[1]});
    const bool ceil = constant(n->input(max ? 5 : 4)).toBool();
    if (ceil)
        OnnxBuilder::integer(node, "ceil_mode", 1);
    if (!max && constant(n->input(5)).toBool() && (p[0] > 0 || p[1] > 0))
        OnnxBuilder::integer(node, "count_include_pad", 1);
    set(n->output(), node.output(0));
    return success();
}

Status GraphConverter::adaptivePool(const Node *n)
{
    const std::vector<int64_t> out = ints(n->input(1));
    const std::vector<int64_t> in = shape(n->input(0));
    if (out.size() != 2)
        return Error{QStringLiteral("adaptive_avg_pool2d without an output size")};
    if (out[0] == 1 && out[1] == 1) {
        set(n->output(), b.add("GlobalAveragePool", {name(n->input(0))}));
        return success();
    }
    if (in.size() != 4)
        return Error{QStringLiteral("adaptive_avg_pool2d on a map of unknown size")};
    m_fixedSize = true; // the pooling depends on the input's size
    if (in[2] % out[0] == 0 && in[3] % out[1] == 0) {
        onnx::NodeProto &node = b.node("AveragePool", {name(n->input(0))});
        OnnxBuilder::ints(node, "kernel_shape", {in[2] / out[0], in[3] / out[1]});
        OnnxBuilder::ints(node, "strides", {in[2] / out[0], in[3] / out[1]});
        set(n->output(), node.output(0));
        return success();
    }
    m_pools[n->output()] = {name(n->input(0)), in[1], in[2], in[3], out[0], out[1]};
    return success();
}

/// The averaging matrix of adaptive_avg_pool2d: [outH·outW, H·W].
torch::Tensor poolMatrix(const PendingPool &p)
{
    torch::Tensor m = torch::zeros({p.outH * p.outW, p.height * p.width}, torch::kDouble);
    for (int64_t i = 0; i < p.outH; ++i) {
        const int64_t y0 = i * p.height / p.outH, y1 = ((i + 1) * p.height + p.outH - 1) / p.outH;
        for (int64_t j = 0; j < p.outW; ++j) {
            const int64_t x0 = j * p.width / p.outW, x1 = ((j + 1) * p.width + p.outW - 1) / p.outW;
            const double w = 1.0 / double((y1 - y0) * (x1 - x0));
            for (int64_t y = y0; y < y1; ++y) {
                for (int64_t x = x0; x < x1; ++x)
                    m[i * p.outW + j][y * p.width + x] = w;
            }
        }
    }
    return m;
}

Status GraphConverter::linear(const Node *n, const Value *input, torch::Tensor weight,
                              torch::Tensor bias)
{
    if (!bias.defined())
        bias = torch::zeros({weight.size(0)});
    if (m_nhwc.count(input)) {
        // A Linear over channels-last features is a 1×1 convolution in NCHW.
        onnx::NodeProto &node
            = b.node("Conv",
                     {name(input), b.constant(weight.reshape({weight.size(0), -1, 1, 1})),
                      b.constant(bias)});
        OnnxBuilder::ints(node, "kernel_shape", {1, 1});
        set(n->output(), node.output(0), true);
        return success();
    }
    std::string x = name(input);
    if (auto it = m_pools.find(input); it != m_pools.end()) {
        const PendingPool &p = it->second;
        if (!p.flattened)
            return Error{QStringLiteral("adaptive pooling before a Linear needs a Flatten")};
        // Gemm on the flattened map: W' = W (K×C×o²) · P (o²×HW).
        weight = torch::matmul(weight.to(torch::kDouble).reshape({weight.size(0), p.channels, -1}),
                               poolMatrix(p))
                     .reshape({weight.size(0), -1});
        onnx::NodeProto &flatten = b.node("Flatten", {p.input});
        OnnxBuilder::integer(flatten, "axis", 1);
        x = flatten.output(0);
    }
    if (x.empty())
        return Error{QStringLiteral("a Linear on a value without an ONNX form")};
    onnx::NodeProto &node = b.node("Gemm", {x, b.constant(weight), b.constant(bias)});
    OnnxBuilder::integer(node, "transB", 1);
    set(n->output(), node.output(0));
    return success();
}

Status GraphConverter::layerNorm(const Node *n)
{
    if (!m_nhwc.count(n->input(0)) || ints(n->input(1)).size() != 1)
        return Error{QStringLiteral("layer_norm other than over the channels has no ONNX form")};
    const int64_t c = ints(n->input(1)).front();
    const double eps = constant(n->input(4)).toScalar().toDouble();
    // Over the channels of an NCHW map: the mean as a 1×1 convolution with weights 1/C.
    const std::string average = b.constant(torch::full({c, c, 1, 1}, 1.0 / double(c)));
    auto channelMean = [&](const std::string &x) {
        onnx::NodeProto &node = b.node("Conv", {x, average});
        OnnxBuilder::ints(node, "kernel_shape", {1, 1});
        return node.output(0);
    };
    const std::string x = name(n->input(0));
    const std::string d = b.add("Sub", {x, channelMean(x)});
    const std::string var = channelMean(b.add("Mul", {d, d}));
    std::string y = b.add("Div", {d, b.add("Sqrt", {b.add("Add", {var, b.scalar(eps)})})});
    if (const torch::Tensor w = tensor(n->input(2)); w.defined())
        y = b.add("Mul", {y, b.constant(w.view({c, 1, 1}))});
    if (const torch::Tensor bias = tensor(n->input(3)); bias.defined())
        y = b.add("Add", {y, b.constant(bias.view({c, 1, 1}))});
    set(n->output(), y, true);
    return success();
}

Status GraphConverter::binary(const Node *n, const char *op)
{
    if (n->inputs().size() > 2 && !isNone(n->input(2))
        && constant(n->input(2)).toScalar().toDouble() != 1.0)
        return Error{QStringLiteral("add with alpha has no ONNX form here")};
    const bool nhwc = m_nhwc.count(n->input(0)) || m_nhwc.count(n->input(1));
    set(n->output(), b.add(op, {operand(n->input(0), nhwc), operand(n->input(1), nhwc)}), nhwc);
    return success();
}

void setShape(onnx::ValueInfoProto *info, const std::vector<std::pair<std::string, int64_t>> &dims)
{
    info->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    auto *shape = info->mutable_type()->mutable_tensor_type()->mutable_shape();
    for (const auto &[param, value] : dims) {
        auto *dim = shape->add_dim();
        if (param.empty())
            dim->set_dim_value(value);
        else
            dim->set_dim_param(param);
    }
}

} // namespace

Result<QByteArray> onnxBytes(Net &net, const torch::Tensor &example, int opset, bool softmax,
                             const std::map<std::string, std::string> &metadata)
{
    auto scripted = scriptNet(net, example.narrow(0, 0, 1), {});
    if (!scripted)
        return scripted.error();
    try {
        std::shared_ptr<torch::jit::Graph> graph = scripted->get_method("forward").graph();
        onnx::ModelProto model;
        model.set_ir_version(opset >= 14 ? 8 : 7);
        model.set_producer_name("ImageFolder Studio");
        auto *import = model.add_opset_import();
        import->set_domain("");
        import->set_version(opset);
        for (const auto &[key, value] : metadata) {
            auto *prop = model.add_metadata_props();
            prop->set_key(key);
            prop->set_value(value);
        }
        onnx::GraphProto *g = model.mutable_graph();
        g->set_name("classifier");
        OnnxBuilder builder(g);
        GraphConverter converter(builder, scripted.value(), *graph);
        if (Status ok = converter.run("input"); !ok)
            return Error{QStringLiteral("cannot write ONNX: ") + ok.errorMessage()};
        // The last node's output becomes the graph's output (no Identity: OpenCV refuses it).
        const std::string last = converter.outputName();
        std::string output = softmax ? "probabilities" : "logits";
        for (auto &node : *g->mutable_node()) {
            for (auto &name : *node.mutable_output()) {
                if (name == last)
                    name = "logits";
            }
            for (auto &name : *node.mutable_input()) {
                if (name == last)
                    name = "logits";
            }
        }
        if (softmax)
            OnnxBuilder::integer(builder.node("Softmax", {"logits"}, output), "axis", 1);
        const bool fixed = converter.fixedSize();
        auto *input = g->add_input();
        input->set_name("input");
        setShape(input,
                 {{"batch", 0},
                  {"", example.size(1)},
                  {fixed ? "" : "height", example.size(2)},
                  {fixed ? "" : "width", example.size(3)}});
        auto *out = g->add_output();
        out->set_name(output);
        torch::NoGradGuard noGrad;
        const torch::Tensor probe = net.forward(example.narrow(0, 0, 1));
        setShape(out, {{"batch", 0}, {"", probe.size(1)}});
        onnx::checker::check_model(model);
        std::string bytes;
        if (!model.SerializeToString(&bytes))
            return Error{QStringLiteral("cannot serialise the ONNX model")};
        return QByteArray(bytes.data(), qsizetype(bytes.size()));
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("cannot write ONNX: %1")
                .arg(QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 0))};
    } catch (const std::exception &e) {
        return Error{QStringLiteral("cannot write ONNX: %1")
                         .arg(QString::fromUtf8(e.what()).section(u'\n', 0, 0))};
    }
}

Result<ForwardFn> openOnnxOpenCv(const QString &path, bool perImage)
{
    try {
        auto net = std::make_shared<cv::dnn::Net>(
            cv::dnn::readNetFromONNX(QFile::encodeName(path).toStdString()));
        return ForwardFn([net, perImage,
                          path](const torch::Tensor &input) -> Result<torch::Tensor> {
            try {
                const torch::Tensor x = input.to(torch::kCPU, torch::kFloat).contiguous();
                std::vector<torch::Tensor> outputs;
                const int64_t step = perImage ? 1 : x.size(0);
                for (int64_t i = 0; i < x.size(0); i += step) {
                    torch::Tensor part = x.narrow(0, i, std::min(step, x.size(0) - i)).contiguous();
                    const int sizes[4] = {int(part.size(0)), int(part.size(1)), int(part.size(2)),
                                          int(part.size(3))};
                    cv::Mat blob(4, sizes, CV_32F, part.data_ptr<float>());
                    net->setInput(blob, "input");
                    cv::Mat out = net->forward();
                    outputs.push_back(
                        torch::from_blob(out.ptr<float>(),
                                         {part.size(0), int64_t(out.total()) / part.size(0)},
                                         torch::kFloat)
                            .clone());
                }
                return torch::cat(outputs, 0);
            } catch (const cv::Exception &e) {
                return Error{QStringLiteral("OpenCV cannot run “%1”: %2")
                                 .arg(path, QString::fromStdString(e.msg).section(u'\n', 0, 0))};
            }
        });
    } catch (const cv::Exception &e) {
        return Error{QStringLiteral("OpenCV cannot read “%1”: %2")
                         .arg(path, QString::fromStdString(e.msg).section(u'\n', 0, 0))};
    }
}

Result<torch::Tensor> runOnnxOpenCv(const QString &path, const torch::Tensor &input, bool perImage)
{
    auto forward = openOnnxOpenCv(path, perImage);
    if (!forward)
        return forward.error();
    return forward.value()(input);
}

Result<std::map<std::string, std::string>> onnxMetadata(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("cannot read “%1”: %2").arg(path, file.errorString()),
                     ErrorCode::Io};
    const QByteArray bytes = file.readAll();
    onnx::ModelProto model;
    if (!model.ParseFromArray(bytes.constData(), int(bytes.size())))
        return Error{QStringLiteral("“%1” is not an ONNX model").arg(path), ErrorCode::Format};
    std::map<std::string, std::string> out;
    for (const auto &prop : model.metadata_props())
        out[prop.key()] = prop.value();
    return out;
}

bool onnxNeedsBatchOne(const QString &arch)
{
    // OpenCV 4.6 multiplies [N, C, 1, 1] by [N, C, H, W] (squeeze-excitation) only at the batch
    // size the net was imported for.
    return arch.startsWith(u"mobilenet_v3") || arch.startsWith(u"efficientnet");
}

} // namespace ifs::tm
