#include "datasets/classchart.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QVBoxLayout>
#include <QValueAxis>

#include <algorithm>

namespace ifs {

namespace {
/// Past this many classes the per-bar labels are unreadable: show none.
constexpr int kMaxLabelledClasses = 24;
const QColor kBarColor(0x4c, 0x9b, 0xe8);
} // namespace

ClassChart::ClassChart(QWidget *parent)
    : QWidget(parent)
    , m_chart(new QChart)
    , m_view(new QChartView(m_chart, this))
    , m_axisX(new QBarCategoryAxis(this))
    , m_axisY(new QValueAxis(this))
{
    m_chart->legend()->hide();
    m_chart->setMargins(QMargins(4, 4, 4, 4));
    m_chart->setBackgroundRoundness(0);
    m_chart->setAnimationOptions(QChart::NoAnimation);
    m_chart->addAxis(m_axisX, Qt::AlignBottom);
    m_chart->addAxis(m_axisY, Qt::AlignLeft);
    m_axisY->setLabelFormat(QStringLiteral("%d"));
    m_axisY->setTitleText(tr("images"));
    QFont small = m_axisX->labelsFont();
    small.setPointSizeF(small.pointSizeF() * 0.85);
    m_axisX->setLabelsFont(small);
    m_axisY->setLabelsFont(small);
    m_view->setRenderHint(QPainter::Antialiasing);
    m_view->setMinimumHeight(160);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_view);
    setObjectName(QStringLiteral("classChart"));
}

void ClassChart::clear()
{
    if (m_series) {
        m_chart->removeSeries(m_series);
        delete m_series;
        m_series = nullptr;
        m_set = nullptr;
    }
    m_classes.clear();
    m_axisX->clear();
}

void ClassChart::setClasses(const QStringList &classes, const std::vector<int64_t> &counts)
{
    clear();
    m_classes = classes;
    m_series = new QBarSeries;
    m_series->setBarWidth(classes.size() > kMaxLabelledClasses ? 1.0 : 0.7);
    m_set = new QBarSet(tr("images"));
    m_set->setColor(kBarColor);
    m_set->setBorderColor(kBarColor.darker(115));
    m_series->append(m_set);
    m_chart->addSeries(m_series);
    m_series->attachAxis(m_axisX);
    m_series->attachAxis(m_axisY);
    connect(m_set, &QBarSet::clicked, this, &ClassChart::classClicked);
    connect(m_set, &QBarSet::hovered, this, [this](bool status, int index) {
        if (status && index >= 0 && index < m_classes.size())
            m_view->setToolTip(QStringLiteral("%1 (%2): %3 images")
                                   .arg(m_classes[index])
                                   .arg(index)
                                   .arg(qlonglong(m_set->at(index))));
        else
            m_view->setToolTip({});
    });
    rebuildAxis();
    setCounts(counts);
}

void ClassChart::rebuildAxis()
{
    m_axisX->clear();
    // Bars are labelled by class index (names are in the table and the tooltips); with many
    // classes the labels are hidden. The index also keeps every category unique.
    const bool labelled = m_classes.size() <= kMaxLabelledClasses;
    QStringList labels;
    labels.reserve(m_classes.size());
    for (int i = 0; i < m_classes.size(); ++i)
        labels.append(QString::number(i));
    m_axisX->append(labels);
    m_axisX->setLabelsVisible(labelled);
    m_axisX->setGridLineVisible(false);
    m_axisX->setTitleText(labelled ? tr("class index")
                                   : tr("%1 classes, by index").arg(m_classes.size()));
}

void ClassChart::setCounts(const std::vector<int64_t> &counts)
{
    if (!m_set)
        return;
    QList<qreal> values;
    values.reserve(qsizetype(counts.size()));
    int64_t largest = 0;
    for (int64_t n : counts) {
        values.append(qreal(n));
        largest = std::max(largest, n);
    }
    if (m_set->count() == values.size()) {
        for (int i = 0; i < values.size(); ++i)
            m_set->replace(i, values[i]);
    } else {
        m_set->remove(0, m_set->count());
        m_set->append(values);
    }
    m_axisY->setRange(0, largest > 0 ? double(largest) * 1.05 : 1.0);
    m_axisY->applyNiceNumbers();
    setHighlightedClass(m_highlighted);
}

void ClassChart::setHighlightedClass(int classIndex)
{
    m_highlighted = classIndex;
    if (!m_set)
        return;
    m_set->deselectAllBars();
    m_set->setSelectedColor(kBarColor.darker(150));
    if (classIndex >= 0 && classIndex < m_set->count())
        m_set->selectBar(classIndex);
}

} // namespace ifs
