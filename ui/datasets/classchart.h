#pragma once

#include <QWidget>

#include <cstdint>
#include <vector>

class QChart;
class QChartView;
class QBarSeries;
class QBarSet;
class QBarCategoryAxis;
class QValueAxis;

namespace ifs {

/// Images per class as a bar chart (Qt Charts). Clicking a bar selects that class. With many
/// classes the category labels are dropped and the bars keep the index order.
class ClassChart : public QWidget
{
    Q_OBJECT

public:
    explicit ClassChart(QWidget *parent = nullptr);

    void setClasses(const QStringList &classes, const std::vector<int64_t> &counts);
    void setCounts(const std::vector<int64_t> &counts);
    void setHighlightedClass(int classIndex);
    void clear();

Q_SIGNALS:
    void classClicked(int classIndex);

private:
    void rebuildAxis();

    QChart *m_chart;
    QChartView *m_view;
    QBarSeries *m_series = nullptr;
    QBarSet *m_set = nullptr;
    QBarCategoryAxis *m_axisX;
    QValueAxis *m_axisY;
    QStringList m_classes;
    int m_highlighted = -1;
};

} // namespace ifs
