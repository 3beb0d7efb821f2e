package rssrecipes.eurekaclient;

import com.netflix.appinfo.InstanceInfo;
import com.netflix.discovery.EurekaClient;
import com.netflix.discovery.shared.Application;
import java.util.List;
import java.util.Map;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * A Java service registered in Eureka through Spring Cloud Netflix's
 * standard client, as a team copying the recipe would write one. The only
 * addition is GET /seen: what its Eureka client currently sees, for the
 * test to compare with our registry.
 */
@SpringBootApplication
@RestController
public class EurekaClientApplication {
    private final EurekaClient eureka;

    public EurekaClientApplication(EurekaClient eureka) {
        this.eureka = eureka;
    }

    public static void main(String[] args) {
        SpringApplication.run(EurekaClientApplication.class, args);
    }

    /** Instance ids with their status, as "id:STATUS", sorted. */
    private static List<String> describe(List<InstanceInfo> instances) {
        return instances.stream()
                .map(i -> i.getInstanceId() + ":" + i.getStatus())
                .sorted()
                .toList();
    }

    @GetMapping("/seen")
    public Map<String, Object> seen() {
        Application self = eureka.getApplication("JAVACHECK");
        Application middletier = eureka.getApplication("MIDDLETIER");
        return Map.of(
                "self", self == null ? List.of() : describe(self.getInstances()),
                "by_app", middletier == null ? List.of() : describe(middletier.getInstances()),
                "by_vip", describe(eureka.getInstancesByVipAddress("middletier", false)),
                "hashcode", String.valueOf(eureka.getApplications().getAppsHashCode()));
    }
}
