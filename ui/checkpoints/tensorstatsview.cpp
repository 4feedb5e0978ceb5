#include "checkpoints/tensorstatsview.h"

#include "checkpoints/histogramwidget.h"

#include <QLabel>
#include <QLocale>
#include <QVBoxLayout>

namespace ifs {

TensorStatsView::TensorStatsView(QWidget *parent)
    : QWidget(parent)
    , m_title(new QLabel(this))
    , m_values(new QLabel(this))
    , m_histogram(new HistogramWidget(this))
{
    QFont bold = m_title->font();
    bold.setBold(true);
    m_title->setFont(bold);
    m_title->setWordWrap(true);
    m_title->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_values->setTextFormat(Qt::RichText);
    m_values->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_values->setWordWrap(true);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 8, 8, 8);
    layout->addWidget(m_title);
    layout->addWidget(m_values);
    layout->addWidget(m_histogram, 1);
    setMessage(tr("Select a tensor to see its statistics."));
}

void TensorStatsView::setPending(const QString &key, const QString &description)
{
    m_stats = {};
    m_title->setText(key);
    m_values->setText(description + QStringLiteral("<br>") + tr("Computing statistics…"));
    m_histogram->setStats({});
    m_histogram->show();
}

void TensorStatsView::setStats(const TensorStats &stats)
{
    m_stats = stats;
    m_histogram->setStats(stats);
    if (!stats.error.isEmpty()) {
        m_values->setText(stats.error.toHtmlEscaped());
        return;
    }
    const QLocale locale;
    auto number = [](double value) {
        return QString::number(value, 'g', 6);
    };
    QString html = QStringLiteral("<table cellspacing=2>");
    auto row = [&html](const QString &name, const QString &value) {
        html += QStringLiteral("<tr><td>%1&nbsp;&nbsp;</td><td align=right><b>%2</b></td></tr>")
                    .arg(name, value);
    };
    row(tr("Elements"), locale.toString(stats.count));
    if (stats.finite > 0) {
        row(tr("Min"), number(stats.min));
        row(tr("Max"), number(stats.max));
        row(tr("Mean"), number(stats.mean));
        row(tr("Std"), number(stats.std));
    }
    row(tr("Zeros"), locale.toString(stats.zeros));
    const QString bad = QStringLiteral("<span style='color:#c0392b'>%1</span>");
    row(tr("NaN"), stats.nans ? bad.arg(locale.toString(stats.nans)) : QStringLiteral("0"));
    row(tr("Inf"), stats.infs ? bad.arg(locale.toString(stats.infs)) : QStringLiteral("0"));
    html += QStringLiteral("</table>");
    m_values->setText(html);
}

void TensorStatsView::setMessage(const QString &text)
{
    m_stats = {};
    m_title->setText(tr("Tensor statistics"));
    m_values->setText(text.toHtmlEscaped());
    m_histogram->setStats({});
    m_histogram->hide();
}

} // namespace ifs
